"""The optional extensions the host loads when they are present.

Each entry is ``(module, class)``; the class is constructed without arguments and reads
what it needs from the host in ``bind``. A module that does not exist yet is skipped
quietly; one that fails to import is reported and skipped, so one broken emulation does
not stop the others.
"""

from __future__ import annotations

import importlib
import logging

from localhost.extension import HostExtension

log = logging.getLogger("localhost")

KNOWN_EXTENSIONS: list[tuple[str, str]] = [
    ("localhost.durable", "DurableExtension"),
    ("localhost.signalr", "SignalRExtension"),
]


def available_extensions() -> list[HostExtension]:
    """Instances of every known extension that can be imported."""
    found: list[HostExtension] = []
    for module_name, class_name in KNOWN_EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # not written yet
            log.exception("extension %s failed to import; skipped", module_name)
            continue
        except Exception:
            log.exception("extension %s failed to import; skipped", module_name)
            continue
        cls = getattr(module, class_name, None)
        if cls is None:  # a package may keep it in its ``extension`` module
            try:
                cls = getattr(importlib.import_module(f"{module_name}.extension"),
                              class_name, None)
            except ImportError:
                cls = None
        if cls is None:
            log.debug("extension module %s has no %s yet; skipped", module_name, class_name)
            continue
        try:
            # An extension configurable from the environment (like app settings) says so.
            factory = getattr(cls, "from_env", cls)
            found.append(factory())
        except Exception:
            log.exception("extension %s could not be created; skipped", class_name)
    return found
