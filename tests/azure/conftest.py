"""Azurite for the Azure adapter tests: one real Blob/Table emulator per test session.

Started from ``node_modules/.bin/azurite`` (package.json) on free ports with in-memory
persistence and a temporary workspace, and stopped at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT

ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret).
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    table_port: int

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_endpoint};TableEndpoint={self.table_endpoint};")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"azurite did not listen on {port} in time")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    exe = ROOT / "node_modules" / ".bin" / "azurite"
    if not exe.exists():  # ./test.sh runs npm ci first; a bare pytest run may not have
        pytest.skip("azurite is not installed (run npm ci or ./test.sh)")
    blob, queue, table = _free_ports(3)
    workspace = tempfile.mkdtemp(prefix="azurite-")
    proc = subprocess.Popen(
        [str(exe), "--silent", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence",
         "--disableTelemetry",
         "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        cwd=workspace)  # in-memory persistence refuses --location; keep stray files here
    try:
        deadline = time.monotonic() + 30
        _wait_listening(blob, proc, deadline)
        _wait_listening(table, proc, deadline)
        yield Azurite(blob, table)
    finally:
        # azurite is a node script behind a shell shim: stop its whole process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(workspace, ignore_errors=True)
