"""The Blob artifact store against Azurite: account-key SAS URLs really upload and download a
file with plain HTTP (as the agent does), carry only the permission they need, and expire."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from shared.artifacts import make_artifact_store
from shared.artifacts._blob import BlobArtifactStore
from shared.clock import ManualClock
from shared.errors import ConstraintViolation
from shared.settings import Settings
from tests.azure.conftest import Azurite

BLOCK_BLOB = {"x-ms-blob-type": "BlockBlob"}


@pytest.fixture
def store(azurite: Azurite) -> Iterator[BlobArtifactStore]:
    made = BlobArtifactStore.from_connection_string(azurite.connection_string, "backups")
    yield made
    made.close()


def new_name() -> str:
    return f"demo/dev/{uuid.uuid4()}.dump"


def test_upload_url_accepts_a_put_and_download_url_returns_the_same_bytes(
        store: BlobArtifactStore) -> None:
    name, payload = new_name(), os.urandom(3 * 1024 * 1024 + 17)
    put = requests.put(store.upload_url(name, timedelta(minutes=10)),
                       data=io.BytesIO(payload), headers=BLOCK_BLOB, timeout=30)
    assert put.status_code == 201, put.text
    assert store.exists(name)
    got = requests.get(store.download_url(name, timedelta(minutes=10)), timeout=30)
    assert got.status_code == 200
    assert got.content == payload


def test_upload_url_cannot_read_and_download_url_cannot_write(store: BlobArtifactStore) -> None:
    name = new_name()
    upload = store.upload_url(name, timedelta(minutes=5))
    assert requests.put(upload, data=b"x", headers=BLOCK_BLOB, timeout=10).status_code == 201
    assert requests.get(upload, timeout=10).status_code == 403
    download = store.download_url(name, timedelta(minutes=5))
    assert requests.put(download, data=b"y", headers=BLOCK_BLOB, timeout=10).status_code == 403


def test_expired_urls_are_refused_by_the_service(azurite: Azurite) -> None:
    # URLs minted by a clock two hours behind expired an hour ago by the service's clock
    past = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    old = BlobArtifactStore.from_connection_string(azurite.connection_string, "backups",
                                                   clock=past)
    name = new_name()
    put = requests.put(old.upload_url(name, timedelta(hours=1)), data=b"late",
                       headers=BLOCK_BLOB, timeout=10)
    assert put.status_code == 403
    assert not old.exists(name)
    old.close()


def test_delete_removes_the_blob_and_deleting_again_is_fine(store: BlobArtifactStore) -> None:
    name = new_name()
    requests.put(store.upload_url(name, timedelta(minutes=5)), data=b"z", headers=BLOCK_BLOB,
                 timeout=10)
    store.delete(name)
    assert not store.exists(name)
    store.delete(name)


def test_location_is_the_credential_free_blob_url_and_maps_back_to_the_name(
        store: BlobArtifactStore, azurite: Azurite) -> None:
    name = new_name()
    location = store.location(name)
    assert location == f"{azurite.blob_endpoint}/backups/{name}"
    assert "sig=" not in location
    assert store.name_of(location) == name
    with pytest.raises(ConstraintViolation):
        store.name_of("https://elsewhere.example/backups/x")


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a/../../b", "/abs", "a//b", "x" * 600])
def test_unsafe_names_are_refused(store: BlobArtifactStore, name: str) -> None:
    with pytest.raises(ConstraintViolation) as info:
        store.upload_url(name, timedelta(minutes=1))
    assert info.value.field == "name"


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5), timedelta(days=8)])
def test_ttl_must_be_positive_and_at_most_seven_days(store: BlobArtifactStore,
                                                     ttl: timedelta) -> None:
    with pytest.raises(ConstraintViolation) as info:
        store.download_url("a.dump", ttl)
    assert info.value.field == "ttl"


def test_azure_mode_selects_blob_storage(azurite: Azurite) -> None:
    settings = Settings.from_env({
        "CLOUDOPS_MODE": "azure", "DATABASE_URL": "postgresql://u@h/db",
        "ServiceBusConnection": "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=b",
        "AzureSignalRConnectionString": "Endpoint=https://x;AccessKey=k;Version=1.0;",
        "AzureWebJobsStorage": azurite.connection_string, "CLOUDOPS_AGENT_KEY_SECRET": "s" * 32,
        "CLOUDOPS_ARTIFACT_CONTAINER": "selected"})
    made = make_artifact_store(settings)
    assert isinstance(made, BlobArtifactStore)
    assert "/selected/" in made.location("a.dump")
