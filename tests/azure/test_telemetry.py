"""Trace context crosses process boundaries in message properties and job payloads, and
Azure Monitor export starts only when Application Insights is configured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry
from shared.settings import Settings


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_trace_continues_from_http_span_through_message_properties_to_the_job(
        spans: tuple[TracerProvider, InMemorySpanExporter],
        monkeypatch: pytest.MonkeyPatch) -> None:
    provider, exporter = spans
    monkeypatch.setattr(telemetry, "tracer", lambda: provider.get_tracer("test"))
    with provider.get_tracer("test").start_as_current_span("POST /deployments") as http:
        properties = telemetry.inject_trace({"operation": "deploy"})
    assert properties["operation"] == "deploy"
    assert properties["traceparent"].split("-")[1] == f"{http.get_span_context().trace_id:032x}"

    # AMQP application properties arrive with bytes keys and values
    received = {k.encode(): v.encode() for k, v in properties.items()}
    with telemetry.span_from(received, "orchestration") as orchestration:
        job_payload = {"traceContext": telemetry.inject_trace({})}
    with telemetry.span_from(job_payload["traceContext"], "agent job"):
        pass

    finished = {s.name: s for s in exporter.get_finished_spans()}
    trace_ids = {s.context.trace_id for s in finished.values()}
    assert trace_ids == {http.get_span_context().trace_id}
    assert finished["orchestration"].parent.span_id == http.get_span_context().span_id
    assert finished["agent job"].parent.span_id == orchestration.get_span_context().span_id


def test_without_an_active_span_nothing_is_injected_and_extract_starts_fresh() -> None:
    assert telemetry.inject_trace({"a": 1}) == {"a": 1}
    context = telemetry.extract_trace({"unrelated": "x"})
    assert not trace.get_current_span(context).get_span_context().is_valid
    assert telemetry.trace_properties(None) == {}


def test_trace_properties_copies_only_the_trace_keys() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    copied = telemetry.trace_properties({"TraceParent": parent, "other": "x"})
    assert copied == {"traceparent": parent}


def test_export_is_configured_once_and_only_with_a_connection_string(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_configured", False)
    calls: list[dict[str, Any]] = []
    assert telemetry.configure_telemetry(Settings.from_env({}), lambda **kw: calls.append(kw))\
        is False
    settings = Settings.from_env({
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-"
                                                 "000000000000;IngestionEndpoint=https://x/"})
    assert telemetry.configure_telemetry(settings, lambda **kw: calls.append(kw)) is True
    assert telemetry.configure_telemetry(settings, lambda **kw: calls.append(kw)) is True
    assert len(calls) == 1
    assert calls[0]["connection_string"].startswith("InstrumentationKey=")
    assert calls[0]["logger_name"] == "cloudops"
    assert calls[0]["instrumentation_options"]["psycopg2"] == {"enabled": False}
