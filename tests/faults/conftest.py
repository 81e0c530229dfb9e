"""Fixtures for the fault suite: a host with short fault windows (see ``FAST``) on its
own throwaway database, and real ``cloudops-agent`` processes to kill, pause and slow."""

from __future__ import annotations

import resource
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.faults._harness import FAST


@pytest.fixture(scope="module")
def fast_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin, name = create_throwaway_database("cloudops_faults")
    host = start_host(with_database(admin, name), tmp_path_factory.mktemp("faults"),
                      env=FAST)
    try:
        yield host
    finally:
        stop_host(host)
        drop_database(admin, name)


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    pool: str
    state: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


AgentFactory = Callable[..., Agent]


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[AgentFactory]:
    """Start real agent processes (``--config`` from the public registration API); each
    is killed at the end. ``file_size_limit`` caps what the agent and its children may
    write (RLIMIT_FSIZE), standing in for a full disk."""
    from agent.local import register_local_agent

    started: list[Agent] = []

    def start(host: RunningHost, pool: str | None = None, *,
              connections: dict[str, str] | None = None,
              file_size_limit: int | None = None, work_dir: Path | None = None) -> Agent:
        pool = pool or f"pool-{secrets.token_hex(3)}"
        state = tmp_path / f"agent-{secrets.token_hex(3)}"
        config = register_local_agent(host.base_url, _admin_cookie_headers(host),
                                      pool=pool, labels=["linux"],
                                      connections=connections or {}, state_dir=state,
                                      name=state.name,
                                      allowed_executables=[sys.executable])
        if work_dir is not None:
            from agent import config as config_file

            cfg = config_file.load(config)
            cfg.work_dir = str(work_dir)
            config_file.save(cfg, config)

        def limit() -> None:
            if file_size_limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

        # Output to a pipe-less sink: RLIMIT_FSIZE does not apply to /dev/null, and a
        # pipe nobody reads would block the agent once full.
        with (state / "agent.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "agent.main", "run", "--config",
                                     str(config)], stdout=subprocess.DEVNULL if
                                    file_size_limit else log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=limit)
        agent = Agent(proc, pool, state)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def _admin_cookie_headers(host: RunningHost) -> dict[str, str]:
    """Headers of an admin user signed in through Easy Auth (pool and token creation)."""
    session = host.session("alice", ("admin",))
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    return {"Cookie": cookie}
