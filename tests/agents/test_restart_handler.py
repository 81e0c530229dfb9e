"""Restart pods through the official ``kubernetes`` client.

No Kubernetes API server runs here, so these tests use a small local stand-in of the two
endpoints the handler calls (PATCH a deployment with a strategic merge patch, GET its
status), which rolls replicas forward one per read the way a controller would. The
stand-in checks the request shapes: path, content type, the restartedAt annotation and
the bearer token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.handlers import JobContext, JobFailed
from agent.handlers.kube import restart

TOKEN = "test-cluster-token"


class FakeApiServer:
    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _target(self) -> tuple[tuple[str, str] | None, bool]:
                parts = self.path.split("?")[0].strip("/").split("/")
                # apis/apps/v1/namespaces/{ns}/deployments/{name}[/status]
                if len(parts) >= 7 and parts[:4] == ["apis", "apps", "v1", "namespaces"] \
                        and parts[5] == "deployments":
                    return (parts[4], parts[6]), parts[7:] == ["status"]
                return None, False

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                    return False
                return True

            def do_PATCH(self) -> None:
                if not self._authorized():
                    return
                key, _status = self._target()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.patches.append({"contentType": self.headers["Content-Type"],
                                       "body": body})
                dep = server.deployments.get(key) if key else None
                if dep is None:
                    self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                dep["metadata"]["generation"] += 1
                dep["spec"]["template"]["metadata"].setdefault("annotations", {}).update(
                    body["spec"]["template"]["metadata"]["annotations"])
                dep["status"].update(updatedReplicas=0, availableReplicas=0,
                                     replicas=dep["spec"]["replicas"])
                self._send(200, dep)

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                key, _status = self._target()
                dep = server.deployments.get(key) if key else None
                if dep is None:
                    self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                    return
                st, want = dep["status"], dep["spec"]["replicas"]
                st["observedGeneration"] = dep["metadata"]["generation"]
                st["updatedReplicas"] = min(want, st.get("updatedReplicas", 0) + 1)
                st["availableReplicas"] = st["updatedReplicas"]
                self._send(200, dep)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, namespace: str, name: str, replicas: int) -> None:
        self.deployments[(namespace, name)] = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "updatedReplicas": replicas, "availableReplicas": replicas}}


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _ctx(tmp_path: Path, clusters: dict[str, Any]) -> tuple[JobContext, list[str], list[int]]:
    lines: list[str] = []
    progress: list[int] = []
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      work_dir=str(tmp_path), clusters=clusters)
    return JobContext(job_id="j", kind="restart", config=cfg, log=lines.append,
                      progress=progress.append), lines, progress


def test_rollout_restart_patches_template_and_waits_until_ready(
        api_server: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent.handlers.kube.POLL_SECONDS", 0.01)
    api_server.add("shop", "web", replicas=3)
    ctx, lines, progress = _ctx(tmp_path, {"dev": {"host": api_server.url, "token": TOKEN}})
    result = restart({"cluster": "dev", "namespace": "shop", "workload": "web",
                      "kind": "deployment"}, ctx)
    assert result["readyReplicas"] == 3 and result["workload"] == "web"
    (patch,) = api_server.patches
    assert patch["contentType"] == "application/strategic-merge-patch+json"
    annotations = patch["body"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/restartedAt"] == result["restartedAt"]
    assert lines[-1] == "rollout complete" and "rollout: 3/3 updated, 3/3 ready" in lines
    assert progress == sorted(progress) and progress[-1] == 100


def test_no_cluster_configured_is_a_clean_failure(tmp_path: Path) -> None:
    ctx, _lines, _progress = _ctx(tmp_path, {})
    with pytest.raises(JobFailed, match="no cluster configured"):
        restart({"cluster": "dev", "namespace": "shop", "workload": "web"}, ctx)


def test_missing_workload_and_bad_token_fail_with_the_http_status(
        api_server: FakeApiServer, tmp_path: Path) -> None:
    ctx, _lines, _progress = _ctx(tmp_path, {"dev": {"host": api_server.url, "token": TOKEN}})
    with pytest.raises(JobFailed, match="HTTP 404"):
        restart({"cluster": "dev", "namespace": "shop", "workload": "nope"}, ctx)
    api_server.add("shop", "web", replicas=1)
    bad, _l, _p = _ctx(tmp_path, {"dev": {"host": api_server.url, "token": "wrong"}})
    with pytest.raises(JobFailed, match="HTTP 401"):
        restart({"cluster": "dev", "namespace": "shop", "workload": "web"}, bad)
