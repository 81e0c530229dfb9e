"""The local artifact endpoint over real HTTP on the local host, used the way an agent uses
a Blob SAS URL: PUT the file with x-ms-blob-type, GET it back; a tampered URL is a 403
problem+json. URLs are signed with the key the host keeps under its CLOUDOPS_HOME."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta

import requests

from shared.artifacts import LocalArtifactStore
from shared.artifacts._local import local_secret
from tests.conftest import RunningHost


def _store(host: RunningHost) -> LocalArtifactStore:
    return LocalArtifactStore(host.home / "artifacts", local_secret(None, host.home),
                              host.base_url)


def test_agent_style_upload_and_download_through_the_local_host(
        running_host: RunningHost) -> None:
    store = _store(running_host)
    payload = os.urandom(2 * 1024 * 1024 + 3)
    name = "demo/dev/over-http.dump"
    put = requests.put(store.upload_url(name, timedelta(minutes=5)), data=io.BytesIO(payload),
                       headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    assert put.status_code == 201, put.text
    assert put.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    assert (running_host.home / "artifacts" / name).read_bytes() == payload
    got = requests.get(store.download_url(name, timedelta(minutes=5)), timeout=30)
    assert got.status_code == 200
    assert got.content == payload


def test_tampered_url_is_refused_over_http(running_host: RunningHost) -> None:
    url = _store(running_host).download_url("demo/x.dump", timedelta(minutes=5))
    resp = requests.get(url.replace("demo/x.dump", "demo/y.dump"), timeout=10)
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("application/problem+json")
