"""Start-up with misconfigured or unsupported functions: report them, serve the rest."""

from __future__ import annotations

from pathlib import Path

from tests.localhost.conftest import start_host


def test_broken_and_unsupported_functions_are_reported_and_the_rest_served(
        tmp_path: Path) -> None:
    running = start_host("broken", tmp_path)
    try:
        host = running.host
        assert set(host.broken) == {"bad_route", "unnamed_queue", "bad_timer"}
        assert "UNSET_QUEUE_SETTING" in host.broken["unnamed_queue"]
        assert [f.name for f in host.unclaimed] == ["unsupported"]
        summary = host.summary()
        assert "5 functions" in summary and "unsupported" in summary
        assert "bad_timer" in summary
        assert running.get("/api/fine").body == b"fine"
    finally:
        running.stop()
