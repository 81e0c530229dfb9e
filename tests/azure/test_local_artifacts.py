"""The local artifact store and its /api/artifacts/{name} endpoint: signed, expiring URLs
that behave like Blob SAS URLs (PUT with x-ms-blob-type, GET), refused with 403 problem+json
when tampered or expired. The endpoint is called the way the Functions worker calls it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest

from functions.http.artifacts import artifact
from shared import services as services_module
from shared.artifacts import LocalArtifactStore, make_artifact_store
from shared.artifacts._local import local_secret
from shared.clock import ManualClock
from shared.settings import Settings

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[LocalArtifactStore]:
    made = LocalArtifactStore(tmp_path / "artifacts", b"k" * 32, "http://127.0.0.1:7071",
                              clock=clock, max_bytes=1024 * 1024)
    services_module.install(SimpleNamespace(artifacts=made))  # type: ignore[arg-type]
    yield made
    services_module.install(None)


def call(method: str, url: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> func.HttpResponse:
    """Invoke the function as the worker would for ``url`` (route params and query parsed)."""
    parts = urlsplit(url)
    prefix = "/api/artifacts/"
    assert parts.path.startswith(prefix)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    req = func.HttpRequest(method, url, headers=headers or {}, params=params,
                           route_params={"name": parts.path.removeprefix(prefix)}, body=body)
    return artifact(req)


def problem(resp: func.HttpResponse) -> dict[str, object]:
    assert resp.mimetype == "application/problem+json"
    return json.loads(resp.get_body())


def test_signed_upload_then_download_round_trips_the_file(store: LocalArtifactStore) -> None:
    payload = bytes(range(256)) * 2000
    put = call("PUT", store.upload_url("demo/dev/b1.dump", timedelta(minutes=5)), payload,
               {"x-ms-blob-type": "BlockBlob", "content-length": str(len(payload))})
    assert put.status_code == 201
    assert json.loads(put.get_body()) == {"name": "demo/dev/b1.dump", "sizeBytes": len(payload),
                                          "sha256": hashlib.sha256(payload).hexdigest()}
    assert store.exists("demo/dev/b1.dump")
    got = call("GET", store.download_url("demo/dev/b1.dump", timedelta(minutes=5)))
    assert got.status_code == 200
    assert got.get_body() == payload


def test_expired_url_is_refused_with_403(store: LocalArtifactStore, clock: ManualClock) -> None:
    url = store.upload_url("late.dump", timedelta(minutes=5))
    clock.advance(timedelta(minutes=5, seconds=1))
    resp = call("PUT", url, b"x")
    assert resp.status_code == 403
    assert "expired" in str(problem(resp)["detail"])
    assert not store.exists("late.dump")


def test_upload_url_cannot_download_and_signature_is_bound_to_the_name(
        store: LocalArtifactStore) -> None:
    store.save("secret.dump", [b"data"])
    upload = store.upload_url("secret.dump", timedelta(minutes=5))
    assert call("GET", upload).status_code == 403
    other = store.download_url("public.dump", timedelta(minutes=5))
    retargeted = other.replace("public.dump", "secret.dump")
    assert call("GET", retargeted).status_code == 403


@pytest.mark.parametrize("query", ["", "?expires=abc&sig=x", "?expires=9999999999"])
def test_missing_or_malformed_signature_is_403(store: LocalArtifactStore, query: str) -> None:
    resp = call("GET", f"http://127.0.0.1:7071/api/artifacts/a.dump{query}")
    assert resp.status_code == 403
    assert problem(resp)["status"] == 403


def test_upload_over_the_size_limit_is_413_and_stores_nothing(
        store: LocalArtifactStore) -> None:
    url = store.upload_url("big.dump", timedelta(minutes=5))
    resp = call("PUT", url, b"x" * (store.max_bytes + 1))
    assert resp.status_code == 413
    assert not store.exists("big.dump")
    assert list(store.root.iterdir()) == []  # no temporary file left behind


def test_download_of_a_missing_artifact_is_404(store: LocalArtifactStore) -> None:
    resp = call("GET", store.download_url("never.dump", timedelta(minutes=5)))
    assert resp.status_code == 404


def test_unsafe_name_in_the_path_is_a_clear_4xx(store: LocalArtifactStore) -> None:
    resp = call("GET", "http://127.0.0.1:7071/api/artifacts/../x?expires=1&sig=x")
    assert resp.status_code == 422
    assert problem(resp)["field"] == "name"


def test_location_and_name_round_trip_and_delete_is_idempotent(
        store: LocalArtifactStore) -> None:
    store.save("x/y.dump", [b"1"])
    assert store.name_of(store.location("x/y.dump")) == "x/y.dump"
    store.delete("x/y.dump")
    store.delete("x/y.dump")
    assert not store.exists("x/y.dump")


def test_endpoint_answers_404_when_artifacts_live_in_blob_storage() -> None:
    services_module.install(SimpleNamespace(artifacts=object()))  # type: ignore[arg-type]
    try:
        resp = call("GET", "http://127.0.0.1:7071/api/artifacts/a.dump?expires=1&sig=x")
    finally:
        services_module.install(None)
    assert resp.status_code == 404


def test_local_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = local_secret(None, tmp_path)
    assert len(first) >= 32
    assert local_secret(None, tmp_path) == first
    assert (tmp_path / "artifact-secret").stat().st_mode & 0o077 == 0
    assert local_secret("configured-secret-value", tmp_path) == b"configured-secret-value"


def test_local_mode_builds_the_local_store_under_home(tmp_path: Path) -> None:
    made = make_artifact_store(Settings.from_env({"CLOUDOPS_HOME": str(tmp_path),
                                                  "CLOUDOPS_LOCAL_HOST_URL": "http://h:1"}))
    assert isinstance(made, LocalArtifactStore)
    assert made.root == tmp_path / "artifacts"
    assert made.upload_url("a.dump", timedelta(minutes=1)).startswith(
        "http://h:1/api/artifacts/a.dump?expires=")
