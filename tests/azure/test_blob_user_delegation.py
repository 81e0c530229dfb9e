"""User-delegation SAS, the path used in Azure (shared keys are disabled there): the store
authenticates with a bearer token (a fake Entra credential), obtains a delegation key from
Azurite running with OAuth over HTTPS, and the SAS URLs it signs with that key really
upload and download a file, are scoped to their permission, and expire."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
from azure.core.credentials import AccessToken

from shared.artifacts._blob import BlobArtifactStore
from shared.clock import ManualClock
from tests.azure.conftest import AzuriteOAuth

BLOCK_BLOB = {"x-ms-blob-type": "BlockBlob"}


class FakeEntraCredential:
    """Issues storage tokens shaped like Entra's (Azurite checks issuer, audience, times)."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.extend(scopes)
        now = int(time.time())
        tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        claims = {"aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{tenant}/",
                  "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "tid": tenant,
                  "oid": "0b5f2a7c-2c1e-4a5e-9a65-5d2f6c3b9f10"}
        return AccessToken(jwt.encode(claims, "k" * 32, algorithm="HS256"),
                           now + 3600)

    def get_token_info(self, *scopes: str, **kwargs: object) -> AccessToken:
        return self.get_token(*scopes)


@pytest.fixture
def store(azurite_oauth: AzuriteOAuth) -> Iterator[tuple[BlobArtifactStore, FakeEntraCredential]]:
    credential = FakeEntraCredential()
    made = BlobArtifactStore.from_endpoint(azurite_oauth.blob_endpoint, "backups", credential,
                                           connection_verify=azurite_oauth.ca_file)
    yield made, credential
    made.close()


def test_delegation_sas_uploads_and_downloads_with_plain_http(
        store: tuple[BlobArtifactStore, FakeEntraCredential], azurite_oauth: AzuriteOAuth) -> None:
    artifacts, credential = store
    name = f"prod/{uuid.uuid4()}.dump"
    upload = artifacts.upload_url(name, timedelta(minutes=10))
    assert "skoid=" in upload and "sig=" in upload  # signed with a delegation key
    put = requests.put(upload, data=b"pg_dump -Fc output", headers=BLOCK_BLOB, timeout=10,
                       verify=azurite_oauth.ca_file)
    assert put.status_code == 201, put.text
    got = requests.get(artifacts.download_url(name, timedelta(minutes=10)), timeout=10,
                       verify=azurite_oauth.ca_file)
    assert got.status_code == 200
    assert got.content == b"pg_dump -Fc output"
    assert artifacts.exists(name)
    assert "https://storage.azure.com/.default" in credential.scopes


def test_delegation_key_is_reused_across_urls(
        store: tuple[BlobArtifactStore, FakeEntraCredential]) -> None:
    artifacts, _ = store
    first = artifacts.download_url("a.dump", timedelta(minutes=5))
    key = artifacts._key  # type: ignore[attr-defined]
    artifacts.download_url("b.dump", timedelta(minutes=30))
    assert artifacts._key is key  # type: ignore[attr-defined]
    assert "skoid=" in first


def test_delegation_sas_is_scoped_and_expires(azurite_oauth: AzuriteOAuth) -> None:
    past = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    old = BlobArtifactStore.from_endpoint(azurite_oauth.blob_endpoint, "backups",
                                          FakeEntraCredential(), clock=past,
                                          connection_verify=azurite_oauth.ca_file)
    name = f"{uuid.uuid4()}.dump"
    expired = old.upload_url(name, timedelta(hours=1))
    assert requests.put(expired, data=b"x", headers=BLOCK_BLOB, timeout=10,
                        verify=azurite_oauth.ca_file).status_code == 403
    old.close()
