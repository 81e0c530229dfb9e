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
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.waiting import wait_until

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
    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(listening, f"azurite to listen on {port}", max(deadline - time.monotonic(), 0))


@contextlib.contextmanager
def _run_azurite(extra: list[str], workspace: Path) -> Iterator[tuple[int, int]]:
    """Run Azurite on free ports until the block ends; yield (blob port, table port)."""
    exe = ROOT / "node_modules" / ".bin" / "azurite"
    if not exe.exists():
        raise RuntimeError("node_modules/.bin/azurite is missing: run `npm ci` (./test.sh does)")
    blob, queue, table = _free_ports(3)
    with open(workspace / "azurite.err", "wb") as err:
        proc = subprocess.Popen(
            [str(exe), "--silent", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence",
             "--disableTelemetry", "--blobPort", str(blob), "--queuePort", str(queue),
             "--tablePort", str(table), *extra],
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            cwd=workspace)  # in-memory persistence refuses --location; stray files go here
    try:
        deadline = time.monotonic() + 30
        _wait_listening(blob, proc, deadline)
        _wait_listening(table, proc, deadline)
        yield blob, table
    finally:
        # azurite is a node script behind a shell shim: stop its whole process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    workspace = Path(tempfile.mkdtemp(prefix="azurite-"))
    try:
        with _run_azurite([], workspace) as (blob, table):
            yield Azurite(blob, table)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


@dataclass(frozen=True)
class AzuriteOAuth:
    """Azurite over HTTPS with OAuth: accepts Entra-style bearer tokens, issues user-
    delegation keys. ``ca_file`` is the self-signed certificate to trust."""

    blob_endpoint: str
    ca_file: str


@pytest.fixture(scope="session")
def azurite_oauth() -> Iterator[AzuriteOAuth]:
    workspace = Path(tempfile.mkdtemp(prefix="azurite-oauth-"))
    cert, key = _self_signed_certificate(workspace)
    try:
        with _run_azurite(["--oauth", "basic", "--cert", str(cert), "--key", str(key)],
                          workspace) as (blob, _table):
            yield AzuriteOAuth(f"https://127.0.0.1:{blob}/{ACCOUNT}", str(cert))
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path
