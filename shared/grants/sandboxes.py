"""A sandbox's own resources, named so they can never be its parent's or another's.

Names are readable where they can be and collision-proof always: a digest of the
project id, the parent's id and the sandbox name ends each one, so ``a-b``+``c`` and
``a``+``b-c`` differ, and the readable part is cut so the whole fits the limit (63
bytes for Postgres database names and Kubernetes namespaces).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from uuid import UUID

LIMIT = 63
SLOT_LIMIT = 40  # App Service: the slot's host name is <site>-<slot>, a DNS label
SLOT_PREFIX = "sbx-"


def _digest(project_id: UUID, parent_id: UUID, name: str) -> str:
    return hashlib.sha256(f"{project_id}/{parent_id}/{name}".encode()).hexdigest()[:12]


def database_name(project_slug: str, project_id: UUID, parent_id: UUID, name: str) -> str:
    """``sandbox_<project>_<name>_<digest>``, at most 63 bytes, [a-z0-9_] only."""
    tail = _digest(project_id, parent_id, name)
    readable = re.sub(r"[^a-z0-9]+", "_", f"{project_slug}_{name}")
    room = LIMIT - len("sandbox__") - len(tail)
    return f"sandbox_{readable[:room].rstrip('_')}_{tail}"


def namespace(parent_namespace: str, project_id: UUID, parent_id: UUID, name: str) -> str:
    """``<parent namespace>-<name>-<digest>``: a DNS label of at most 63 characters."""
    tail = _digest(project_id, parent_id, name)
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{parent_namespace}-{name}")
    room = LIMIT - 1 - len(tail)
    return f"{readable[:room].strip('-')}-{tail}"


def slot_name(project_id: UUID, parent_id: UUID, name: str) -> str:
    """``sbx-<name>-<digest>``: a deployment slot name of at most 40 characters, never
    ``production`` nor a slot a person would name (the parent's ``staging``)."""
    tail = _digest(project_id, parent_id, name)
    readable = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    room = SLOT_LIMIT - len(SLOT_PREFIX) - 1 - len(tail)
    return f"{SLOT_PREFIX}{readable[:room].strip('-') or 'x'}-{tail}"


def sandbox_target(parent_target: dict[str, Any], project_id: UUID, parent_id: UUID,
                   name: str) -> dict[str, Any]:
    """The parent's target with the sandbox's own namespace on the parent's cluster (and
    no list of further namespaces: a sandbox restarts only in its own), or its own
    deployment slot on the parent's App Service site."""
    target = {k: v for k, v in parent_target.items() if k != "namespaces"}
    if target.get("type") == "agent" and target.get("cluster"):
        target["namespace"] = namespace(str(target.get("namespace") or "default"),
                                        project_id, parent_id, name)
    if target.get("type") == "appservice":
        target["slot"] = slot_name(project_id, parent_id, name)
    return target
