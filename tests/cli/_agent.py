"""A test-driven agent speaking the real agent protocol over HTTP: it registers in its own
pool, and either serves every job at once (``serve()``) or is stepped by the test
(``next_job`` / ``logs`` / ``result``) to hold a task running while the test acts."""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

import requests

from tests.conftest import RunningHost


class TestAgent:
    __test__ = False  # not a test class

    def __init__(self, host: RunningHost, admin: Any, labels: tuple[str, ...] = ("linux",)) -> None:
        self.host = host
        self.pool = f"pool-{uuid.uuid4().hex[:6]}"
        r = admin.post(host.url("/api/pools"), json={"name": self.pool})
        assert r.status_code == 201, r.text
        token = admin.post(host.url(f"/api/pools/{self.pool}/registration-tokens"),
                           json={}).json()["token"]
        registered = requests.post(host.url("/api/agent/register"),
                                   json={"token": token, "name": "a1", "labels": list(labels)})
        assert registered.status_code == 201, registered.text
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {registered.json()['key']}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    @property
    def target(self) -> dict[str, Any]:
        return {"type": "agent", "pool": self.pool, "labels": ["linux"], "cluster": "local"}

    def next_job(self, wait: float = 5) -> dict[str, Any] | None:
        r = self.http.get(self.host.url(f"/api/agent/jobs/next?wait={wait}"))
        assert r.status_code in (200, 204), r.text
        return None if r.status_code == 204 else r.json()

    def logs(self, job_id: str, lines: list[str], progress: int | None = None) -> None:
        r = self.http.post(self.host.url(f"/api/agent/jobs/{job_id}/logs"),
                           json={"lines": lines, "progress": progress})
        assert r.status_code in (200, 202), r.text

    def result(self, job_id: str, status: str, **kw: Any) -> None:
        r = self.http.post(self.host.url(f"/api/agent/jobs/{job_id}/result"),
                           json={"status": status, **kw})
        assert r.status_code == 200, r.text

    def serve(self) -> TestAgent:
        """Answer every job with success (a backup gets a plausible artifact)."""
        def loop() -> None:
            try:
                serve_jobs()
            except BaseException as exc:  # surfaced by stop(): a dead agent fails the test
                self.errors.append(exc)

        def serve_jobs() -> None:
            while not self._stop.is_set():
                job = self.next_job(wait=0.5)
                if job is None:
                    continue
                self.logs(job["id"], [f"agent: {job['kind']} started"], 50)
                result: dict[str, Any] = {}
                if job["kind"] == "backup":
                    # uploaded as a real agent does: a restore checks the artifact is there
                    data = b"\0" * 4096
                    put = requests.put(job["payload"]["uploadUrl"], data=data, timeout=30,
                                       headers={"x-ms-blob-type": "BlockBlob"})
                    assert put.status_code < 300, put.text
                    result = {"artifact": job["payload"]["artifact"], "sizeBytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()}
                self.result(job["id"], "succeeded", result=result)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.errors:
            raise AssertionError(f"the test agent failed: {self.errors[0]!r}")
