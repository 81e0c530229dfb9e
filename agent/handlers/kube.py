"""Kubernetes rollout restart through the official ``kubernetes`` client.

Like ``kubectl rollout restart``: patch the pod template's
``kubectl.kubernetes.io/restartedAt`` annotation (a strategic merge patch), then follow
the rollout the way ``kubectl rollout status`` does — the controller has observed the new
generation and every replica is updated and available — reporting progress as it goes.
Cluster access stays on the agent: ``clusters: {name: {"kubeconfig": path, "context":
name}}`` or ``{name: {"host": url, "token": ..., "caCert": path, "verifySsl": true}}``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.handlers import JobContext, JobFailed, check_serves, require

KINDS = ("deployment", "statefulset", "daemonset")
POLL_SECONDS = 1.0


def _api(cluster: dict[str, Any]) -> Any:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    if cluster.get("kubeconfig"):
        path = Path(str(cluster["kubeconfig"])).expanduser()
        if not path.exists():
            raise JobFailed(f"kubeconfig {path} not found on this agent")
        return k8s.AppsV1Api(k8s_config.new_client_from_config(
            config_file=str(path), context=cluster.get("context")))
    if cluster.get("host"):
        conf = k8s.Configuration()
        conf.host = str(cluster["host"]).rstrip("/")
        if cluster.get("token"):
            conf.api_key = {"BearerToken": f"Bearer {cluster['token']}"}
        conf.verify_ssl = bool(cluster.get("verifySsl", True))
        if cluster.get("caCert"):
            conf.ssl_ca_cert = str(Path(str(cluster["caCert"])).expanduser())
        return k8s.AppsV1Api(k8s.ApiClient(conf))
    raise JobFailed("cluster config needs 'kubeconfig' or 'host'")


def _ops(api: Any, kind: str) -> tuple[Any, Any]:
    names = {"deployment": "deployment", "statefulset": "stateful_set",
             "daemonset": "daemon_set"}[kind]
    return (getattr(api, f"patch_namespaced_{names}"),
            getattr(api, f"read_namespaced_{names}_status"))


def _rollout_state(obj: Any, kind: str) -> tuple[bool, int, int, str]:
    """(done, ready, wanted, words) from a workload's status, as kubectl judges it."""
    status, spec = obj.status, obj.spec
    generation = obj.metadata.generation or 0
    observed = status.observed_generation or 0
    if kind == "daemonset":
        wanted = status.desired_number_scheduled or 0
        updated = status.updated_number_scheduled or 0
        ready = status.number_available or 0
    else:
        wanted = spec.replicas if spec.replicas is not None else 1
        updated = status.updated_replicas or 0
        ready = (status.available_replicas if kind == "deployment"
                 else status.ready_replicas) or 0
    total = (status.replicas or 0) if kind != "daemonset" else wanted
    done = observed >= generation and updated >= wanted and ready >= wanted and total <= wanted
    words = f"{updated}/{wanted} updated, {ready}/{wanted} ready"
    return done, ready, wanted, words


def restart(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    name = require(payload, "cluster")
    cluster = ctx.config.clusters.get(name)
    if not cluster:
        raise JobFailed(f"no cluster configured: this agent has no cluster named {name!r}")
    check_serves(payload, "cluster", name, cluster.get("projects"))
    namespace = require(payload, "namespace")
    workload = require(payload, "workload")
    kind = str(payload.get("kind") or "deployment").lower()
    if kind not in KINDS:
        raise JobFailed(f"kind must be one of {', '.join(KINDS)}")
    timeout = float(payload.get("timeoutSeconds") or 600)
    api = _api(cluster)
    try:
        return _restart(api, payload, ctx, name=name, namespace=namespace, workload=workload,
                        kind=kind, timeout=timeout)
    finally:
        api.api_client.close()  # its urllib3 pool holds sockets


def _restart(api: Any, payload: dict[str, Any], ctx: JobContext, *, name: str,
             namespace: str, workload: str, kind: str, timeout: float) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    patch, read = _ops(api, kind)
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": stamp}}}}}
    ctx.log(f"restarting {kind} {namespace}/{workload} on cluster {name}")
    try:
        patch(workload, namespace, body, _content_type="application/strategic-merge-patch+json")
    except ApiException as exc:
        raise JobFailed(f"restart refused by the cluster: HTTP {exc.status} {exc.reason}"
                        ) from None
    except Exception as exc:  # connection errors from urllib3
        raise JobFailed(f"cannot reach cluster {name}: {type(exc).__name__}") from None
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        ctx.check_cancel()
        try:
            obj = read(workload, namespace)
        except ApiException as exc:
            raise JobFailed(f"reading rollout status failed: HTTP {exc.status}") from None
        done, ready, wanted, words = _rollout_state(obj, kind)
        if words != last:
            ctx.log(f"rollout: {words}")
            last = words
        if wanted:
            ctx.progress(min(99, 10 + int(80 * ready / wanted)))
        if done:
            ctx.progress(100)
            ctx.log("rollout complete")
            return {"cluster": name, "namespace": namespace, "workload": workload,
                    "kind": kind, "readyReplicas": ready, "restartedAt": stamp}
        if time.monotonic() > deadline:
            raise JobFailed(f"rollout not ready after {timeout:g} s ({words})")
        time.sleep(POLL_SECONDS)
