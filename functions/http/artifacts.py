"""PUT/GET /api/artifacts/{name}: the local stand-in for Blob storage's SAS URLs.

Anonymous at the Functions level because agents present no key, only the URL the control
plane signed for them (``expires`` + ``sig``); a bad or expired signature is a 403. It
serves the local artifact store only; in Azure, agents talk to Blob storage directly and
this endpoint answers 404. The Python worker hands the body over whole (plain
``func.HttpRequest``), so it is written to disk in chunks, never copied again, and the
size limit (``CLOUDOPS_ARTIFACT_MAX_BYTES``) is enforced before anything is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import azure.functions as func

from functions.http._common import api
from functions.http._responses import json_response
from shared.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    PayloadTooLarge,
    check_name,
    make_artifact_store,
)
from shared.errors import NotFound
from shared.services import services

bp = func.Blueprint()

_CHUNK = 1024 * 1024
_fallback_lock = threading.Lock()
_fallback: dict[int, ArtifactStore] = {}


def _local_store() -> LocalArtifactStore:
    svc = services()
    store = getattr(svc, "artifacts", None)
    if store is None:  # Services without an artifact store yet: build it from the settings
        with _fallback_lock:
            store = _fallback.get(id(svc))
            if store is None:
                made = make_artifact_store(svc.settings)
                store = _fallback[id(svc)] = made
    if not isinstance(store, LocalArtifactStore):
        raise NotFound("artifacts are served by Blob storage in this deployment")
    return store


def _chunks(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), _CHUNK):
        yield bytes(view[start:start + _CHUNK])


@bp.route(route="artifacts/{*name}", methods=["GET", "PUT"],
          auth_level=func.AuthLevel.ANONYMOUS)
@api
def artifact(req: func.HttpRequest) -> func.HttpResponse:
    name = check_name(req.route_params.get("name", ""))
    store = _local_store()
    store.verify(req.method, name, req.params.get("expires"), req.params.get("sig"))
    if req.method.upper() == "PUT":
        declared = req.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > store.max_bytes:
            raise PayloadTooLarge(f"artifact larger than {store.max_bytes} bytes",
                                  field="body")
        size, sha256 = store.save(name, _chunks(req.get_body() or b""))
        return json_response({"name": name, "sizeBytes": size, "sha256": sha256}, status=201)
    path = store.open(name)
    return func.HttpResponse(path.read_bytes(), status_code=200,
                             mimetype="application/octet-stream")
