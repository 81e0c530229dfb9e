"""The samples-v2 apps through the real local host with ``DurableExtension``.

HTTP starters get the ``durableClient`` binding from the extension, start orchestrations
through the Durable HTTP API on the host's port, and answer with check-status URLs that
the test then follows; the human-interaction sample gets its events through
``sendEventPostUri``. Orchestrators run with full replay through ``host.invoke``
(``extended_sessions=False``) in one test and with extended sessions in the others.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localhost.durable import DurableExtension
from localhost.host import Host
from tests.waiting import async_wait_until

APP_DIR = Path(__file__).parent / "apps" / "samples"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def backup_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    site, backups = tmp_path / "site", tmp_path / "backups"
    (site / "css").mkdir(parents=True)
    backups.mkdir()
    (site / "index.html").write_text("<h1>hi</h1>")
    (site / "css" / "site.css").write_text("body { color: teal; }")
    monkeypatch.setenv("BACKUP_DIR", str(backups))
    yield site, backups


async def _start(http: aiohttp.ClientSession, host: Host, name: str, body: Any = None
                 ) -> dict[str, str]:
    async with http.post(f"{host.base_url}/api/orchestrators/{name}",
                         json=body) as resp:
        assert resp.status == 202, await resp.text()
        links = await resp.json()
        assert resp.headers["Location"] == links["statusQueryGetUri"]
        return links


async def _finished(http: aiohttp.ClientSession, links: dict[str, str]) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        async with http.get(links["statusQueryGetUri"]) as resp:
            status = await resp.json()
            if resp.status == 200:
                return dict(status)
            assert resp.status == 202
        return None
    return await async_wait_until(finished, "the orchestration to finish", 10)


async def _host(tmp: Path, **options: Any) -> Host:
    host = Host(APP_DIR, port=0, state_dir=tmp / "state", builtins=False,
                extensions=[DurableExtension(**options)])
    await host.start()
    return host


@pytest.mark.parametrize("sessions", [True, False], ids=["extended", "full-replay"])
def test_function_chaining_sample(tmp_path: Path, sessions: bool) -> None:
    async def main():
        host = await _host(tmp_path, extended_sessions=sessions)
        try:
            async with aiohttp.ClientSession() as http:
                links = await _start(http, host, "my_orchestrator")
                status = await _finished(http, links)
            assert status["runtimeStatus"] == "Completed"
            assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        finally:
            await host.stop()
    run(main())


def test_fan_out_fan_in_sample(tmp_path: Path, backup_dirs: tuple[Path, Path]) -> None:
    site, backups = backup_dirs

    async def main():
        host = await _host(tmp_path)
        try:
            async with aiohttp.ClientSession() as http:
                links = await _start(http, host, "E2_BackupSiteContent", str(site))
                status = await _finished(http, links)
            assert status["runtimeStatus"] == "Completed"
            assert status["output"] == len("<h1>hi</h1>") + len("body { color: teal; }")
            assert sorted(p.name for p in backups.iterdir()) == ["index.html", "site.css"]
        finally:
            await host.stop()
    run(main())


def test_human_interaction_sample(tmp_path: Path) -> None:
    async def main():
        host = await _host(tmp_path)
        try:
            sent = sys.modules[host.module.__name__].SENT_CODES
            async with aiohttp.ClientSession() as http:
                links = await _start(http, host, "E4_SmsPhoneVerification", "+15550100")
                await async_wait_until(lambda: "+15550100" in sent, "the SMS challenge", 5)
                send = links["sendEventPostUri"].replace("{eventName}", "SmsChallengeResponse")
                wrong = (sent["+15550100"] + 1) % 10000
                for answer in (wrong, sent["+15550100"]):
                    async with http.post(send, data=json.dumps(answer),
                                         headers={"Content-Type": "application/json"}) as r:
                        assert r.status == 202
                status = await _finished(http, links)
            assert status["runtimeStatus"] == "Completed"
            assert status["output"] is True
        finally:
            await host.stop()
    run(main())


def test_a_client_session_left_by_an_earlier_event_loop_is_replaced(tmp_path: Path) -> None:
    from azure.durable_functions.models.utils import http_utils

    async def leave_a_session_behind() -> None:
        await http_utils._get_session()  # as a host whose loop ended without closing it

    run(leave_a_session_behind())
    stale = http_utils._client_session
    assert stale is not None and not stale.closed

    async def main():
        host = await _host(tmp_path)
        try:
            async with aiohttp.ClientSession() as http:
                status = await _finished(http, await _start(http, host, "my_orchestrator"))
            assert status["runtimeStatus"] == "Completed"
        finally:
            await host.stop()
    run(main())
    assert stale.closed


def test_the_extension_keeps_instances_in_postgres_when_configured(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setenv("CLOUDOPS_DURABLE_STORE", "postgres")
    monkeypatch.setenv("DATABASE_URL", database_url)

    async def main():
        host = Host(APP_DIR, port=0, state_dir=tmp_path / "state", builtins=False,
                    extensions=[DurableExtension()])
        await host.start()
        try:
            async with aiohttp.ClientSession() as http:
                status = await _finished(http, await _start(http, host, "my_orchestrator"))
            return status
        finally:
            await host.stop()

    try:
        status = run(main())
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT status, output FROM durable_instances "
                               "WHERE instance_id = %s", (status["instanceId"],)).fetchone()
        assert row is not None and row[0] == "Completed"
        assert json.loads(row[1]) == status["output"]
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS durable_history, durable_inbox, "
                         "durable_instances")
