"""OpenTelemetry: Azure Monitor export when configured, and trace-context carriers.

``configure_telemetry(settings)`` turns on the Azure Monitor distro (traces, logs of the
``cloudops`` logger, metrics; Azure SDK calls and requests, the client of
``shared.httpclient``, instrumented) only when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
is set, authenticating to App Insights with the managed identity when one is configured.
Without it nothing is exported and the helpers below still work (they carry whatever span
is current, possibly none).

One trace runs from the HTTP request through the Service Bus message, the orchestration
and its activities to the agent's job: the sender calls ``inject_trace`` on the message's
application properties (or a job payload's ``traceContext``), the receiver calls
``extract_trace``/``span_from`` to continue it. W3C ``traceparent``/``tracestate`` keys.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context

from shared.azure_credential import MONITORING_METRICS_PUBLISHER, AzureRole

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger("cloudops.telemetry")
TRACER_NAME = "cloudops"
AZURE_ROLES = (AzureRole("send telemetry to Entra-only Application Insights",
                         "Microsoft.Insights/components", (MONITORING_METRICS_PUBLISHER,)),)
TRACE_KEYS = ("traceparent", "tracestate")

_lock = threading.Lock()
_configured = False


def configure_telemetry(settings: Settings,
                        configure: Callable[..., None] | None = None) -> bool:
    """Start exporting to Application Insights if it is configured; True if it now is.

    Safe to call more than once (the distro must be configured once per process).
    ``configure`` replaces ``configure_azure_monitor`` in tests.
    """
    global _configured
    connection = settings.appinsights_connection_string
    if not connection:
        return False
    with _lock:
        if _configured:
            return True
        if configure is None:
            from azure.monitor.opentelemetry import configure_azure_monitor

            configure = configure_azure_monitor
        options: dict[str, Any] = {
            "connection_string": connection,
            "logger_name": "cloudops",
            # psycopg 3 is not psycopg2; Django/Flask/FastAPI are not used here
            "instrumentation_options": {"psycopg2": {"enabled": False},
                                        "django": {"enabled": False},
                                        "flask": {"enabled": False},
                                        "fastapi": {"enabled": False}},
        }
        if settings.mode == "azure" and settings.azure_client_id:
            from shared.azure_credential import azure_credential

            options["credential"] = azure_credential(settings)  # Entra-only App Insights
        configure(**options)
        _configured = True
        log.info("OpenTelemetry export to Application Insights enabled")
        return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


Carrier = TypeVar("Carrier", bound=MutableMapping[str, Any])


def inject_trace(properties: Carrier, context: Context | None = None) -> Carrier:
    """Write the current (or given) trace context into ``properties``; return it.

    For Service Bus application properties and job payloads (``payload["traceContext"]``).
    Leaves ``properties`` untouched when there is no active span.
    """
    propagate.inject(properties, context=context)
    return properties


def extract_trace(properties: Mapping[Any, Any] | None) -> Context:
    """The trace context carried in ``properties`` (keys/values may be bytes, as AMQP
    application properties arrive from azure-servicebus); an empty context if none."""
    carrier: dict[str, str] = {}
    for key, value in (properties or {}).items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name.lower() in TRACE_KEYS:
            carrier[name.lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return propagate.extract(carrier)


def trace_properties(properties: Mapping[Any, Any] | None) -> dict[str, str]:
    """Only the trace keys of ``properties`` (to copy them from a message into a job)."""
    return inject_trace({}, extract_trace(properties))


@contextmanager
def span_from(properties: Mapping[Any, Any] | None, name: str, *,
              kind: trace.SpanKind = trace.SpanKind.CONSUMER,
              attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """A span continuing the trace carried in ``properties`` (a new trace if none)."""
    with tracer().start_as_current_span(name, context=extract_trace(properties), kind=kind,
                                        attributes=dict(attributes or {})) as span:
        yield span
