"""Postgres cut away under load: the host reaches Postgres through a TCP proxy that drops
every connection and refuses new ones for a few seconds (a restarting server looks the
same from the client), then lets them through again. A gap shorter than the pool's
connection wait (10 s) is simply waited out; this one is longer. During the gap the API answers 503
with ``Retry-After``; afterwards it recovers without a restart and every task it accepted
(202) ends terminal with a reason. The machine's real server is never touched."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.faults._harness import FAST, make_env, settle, terminal_transitions
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[RunningHost, TcpProxy]]:
    admin, name = create_throwaway_database("cloudops_faults_pg")
    direct = conninfo_to_dict(with_database(admin, name))
    proxy = TcpProxy(str(direct.get("host") or "127.0.0.1"), int(direct.get("port") or 5432))
    via_proxy = make_conninfo(**{**direct, "host": "127.0.0.1", "port": str(proxy.port)})
    host = start_host(via_proxy, tmp_path, env=FAST)
    try:
        yield host, proxy
    finally:
        proxy.restore()
        stop_host(host)
        proxy.close()
        drop_database(admin, name)


class Load:
    """Deploys and reads from a thread; records what was accepted and every status."""

    def __init__(self, host: RunningHost, projects: list[str]) -> None:
        self.host, self.projects = host, projects
        self.accepted: list[str] = []
        self.statuses: list[tuple[int, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        admin = self.host.session("alice", ("admin",))
        i = 0
        while not self.stop.is_set():
            project = self.projects[i % len(self.projects)]
            try:
                r = admin.post(self.host.url(f"/api/projects/{project}/environments/dev/"
                                             "deployments"), json={"version": str(i)},
                               timeout=30)
                self.statuses.append((r.status_code, r.headers.get("Retry-After")))
                if r.status_code == 202:
                    self.accepted.append(r.json()["id"])
                r = admin.get(self.host.url("/api/tasks?status=running"), timeout=30)
                self.statuses.append((r.status_code, r.headers.get("Retry-After")))
            except requests.RequestException as exc:  # never acceptable: the host must answer
                self.statuses.append((0, repr(exc)))
            i += 1
            self.stop.wait(0.05)  # the load's pace


def test_postgres_cut_during_load_gives_503_then_recovers_losing_nothing(
        proxied: tuple[RunningHost, TcpProxy]) -> None:
    host, proxy = proxied
    admin: Any = host.session("alice", ("admin",))
    projects = [make_env(admin, host)[0] for _ in range(3)]
    load = Load(host, projects)
    load.thread.start()
    try:
        wait_until(lambda: len(load.accepted) >= 3, "the load to get deployments accepted")
        proxy.cut()
        # A gap shorter than the pool's 10 s wait for a connection is absorbed (requests
        # wait and then succeed); the cut lasts until it has turned into a 503.
        wait_until(lambda: any(code == 503 for code, _ in load.statuses),
                   "a 503 while Postgres is cut", timeout=60)
        proxy.restore()
        mark = len(load.statuses)
        wait_until(lambda: any(code == 202 for code, _ in load.statuses[mark:]),
                   "a deployment accepted after the restore", timeout=60)
    finally:
        load.stop.set()
        load.thread.join(timeout=60)
    codes = [code for code, _ in load.statuses]
    assert 0 not in codes, [s for s in load.statuses if s[0] == 0][:3]
    unavailable = [retry for code, retry in load.statuses if code == 503]
    assert unavailable, "the cut was never seen"
    assert all(retry and int(retry) > 0 for retry in unavailable)
    assert set(codes) <= {200, 202, 503}, sorted(set(codes))
    # recovered without a restart: the last requests succeeded again
    assert codes[-4:] == [202, 200, 202, 200] or codes[-2:] == [202, 200], codes[-6:]
    assert host.proc.poll() is None
    tasks = settle(host, load.accepted, timeout=60)
    assert all(t["reason"] for t in tasks.values())
    outcomes = [t["status"] for t in tasks.values()]
    assert set(outcomes) <= {"succeeded", "failed"}
    assert set(terminal_transitions(host.database_url, load.accepted).values()) <= {1}
