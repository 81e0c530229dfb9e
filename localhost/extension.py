"""The contract between the host core and the emulations that plug into it.

An extension is created before the host starts, ``bind``-s itself to the host (adding
aiohttp routes, claiming trigger types, providing input-binding values), then is started
and stopped with the host. The core host (``localhost/host.py``) provides:

- ``host.functions``: every discovered function (``FunctionInfo``: name, trigger binding
  dict, all binding dicts, the user callable, whether it is async).
- ``host.web``: the ``aiohttp.web.Application`` serving the one port; extensions add
  routes in ``bind`` (before the app is frozen).
- ``host.base_url``: e.g. ``http://127.0.0.1:7071``; ``host.state_dir``: ``.cloudops/``.
- ``host.register_trigger(type, starter)``: the extension owns functions whose trigger
  binding has this ``type`` (e.g. ``orchestrationTrigger``); ``starter(fn)`` is called
  once per such function at start-up.
- ``host.register_input_binding(type, provider)``: for input bindings of this ``type``
  (e.g. ``durableClient``), ``provider(fn, binding)`` returns the value the Functions
  host would pass (for ``durableClient``: the client JSON string).
- ``await host.invoke(fn, trigger_value)``: run a user function the way the Functions
  worker would, with its trigger argument and every input binding resolved; sync
  functions run on the worker thread pool. Returns the ``$return`` value.
- ``host.resolve_setting(value)``: ``%NAME%`` app-setting references resolved.

Also available (``localhost/host.py``): ``host.invoke_full(fn, value)`` (return value plus
``func.Out`` values), ``host.set_env(name, value)`` (an app setting for the app, restored
at stop), ``host.extension_config(name)`` (``host.json`` ``extensions.<name>``),
``host.keys`` (``master_key``, ``function_keys``, ``system_key(name, state_dir)``),
``host.report_broken(fn, reason)`` (listed in the start-up summary), ``host.stopping``,
``host.extension(name)``. Extensions are stopped in reverse order after the HTTP front
has drained (new ``/api`` requests get 503), so in-flight requests can still use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from localhost.host import Host


class HostExtension(Protocol):
    name: str

    def bind(self, host: Host) -> None:
        """Attach to the host: add routes, claim trigger types, provide bindings."""

    async def start(self) -> None:
        """Begin work (consumers, timers, resumed instances)."""

    async def stop(self) -> None:
        """Finish or record in-flight work; leave nothing running."""
