"""Backup artifacts in Azure Blob storage, handed to agents as short-lived SAS URLs.

With a connection string (Azurite, or an account that still allows shared keys) URLs are
account-key SAS. With ``DefaultAzureCredential`` (the managed identity; the Bicep disables
shared keys) they are user-delegation SAS: a delegation key is fetched from the service
(needs the role "Storage Blob Delegator" or any Blob data role) and cached until shortly
before it expires. Upload URLs may only create/write, download URLs only read.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
)

from shared.artifacts._port import ArtifactStore, check_name, check_ttl
from shared.azure_credential import (
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_OWNER,
    AzureRole,
)
from shared.clock import Clock, SystemClock
from shared.errors import ConstraintViolation, Unavailable

AZURE_ROLES = (AzureRole(
    "backup artifacts: create container, delete/check blobs, user-delegation keys for SAS",
    "Microsoft.Storage/storageAccounts",
    (STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_OWNER)),)

# Allow for clock skew between us, the storage service and the agent.
_SKEW = timedelta(minutes=5)
# Fetch delegation keys that outlive most URLs, so one key serves many of them.
_KEY_LIFETIME = timedelta(hours=6)


class BlobArtifactStore(ArtifactStore):
    def __init__(self, service: BlobServiceClient, container: str, *,
                 clock: Clock | None = None) -> None:
        self._service = service
        self._container = container
        self._clock = clock or SystemClock()
        self._account_key: str | None = getattr(service.credential, "account_key", None)
        self._key: UserDelegationKey | None = None
        self._key_expiry: datetime | None = None
        self._lock = threading.Lock()
        self._container_ready = False

    @classmethod
    def from_connection_string(cls, connection: str, container: str,
                               clock: Clock | None = None) -> BlobArtifactStore:
        return cls(BlobServiceClient.from_connection_string(connection), container, clock=clock)

    @classmethod
    def from_endpoint(cls, endpoint: str, container: str, credential: TokenCredential,
                      clock: Clock | None = None, **client: Any) -> BlobArtifactStore:
        """``client``: extra BlobServiceClient options (e.g. ``connection_verify``)."""
        return cls(BlobServiceClient(endpoint, credential=credential, **client), container,
                   clock=clock)

    # -- URLs -----------------------------------------------------------------------------

    def upload_url(self, name: str, ttl: timedelta) -> str:
        self._ensure_container()
        return self._sas_url(check_name(name), check_ttl(ttl),
                             BlobSasPermissions(create=True, write=True))

    def download_url(self, name: str, ttl: timedelta) -> str:
        return self._sas_url(check_name(name), check_ttl(ttl), BlobSasPermissions(read=True))

    def _sas_url(self, name: str, ttl: timedelta, permission: BlobSasPermissions) -> str:
        now = self._clock.now()
        start, expiry = now - _SKEW, now + ttl
        signing: dict[str, Any]
        if self._account_key:
            signing = {"account_key": self._account_key}
        else:
            signing = {"user_delegation_key": self._delegation_key(start, expiry)}
        sas = generate_blob_sas(self._service.account_name or "", self._container, name,
                                permission=permission, start=start, expiry=expiry, **signing)
        return f"{self._blob(name).url}?{sas}"

    def _delegation_key(self, start: datetime, expiry: datetime) -> UserDelegationKey:
        with self._lock:
            if self._key is None or self._key_expiry is None or self._key_expiry < expiry:
                key_expiry = max(expiry, start + _KEY_LIFETIME)
                try:
                    self._key = self._service.get_user_delegation_key(start, key_expiry)
                except HttpResponseError as exc:
                    raise Unavailable(f"blob storage refused a delegation key: {exc.message}")\
                        from exc
                self._key_expiry = key_expiry
            return self._key

    def _ensure_container(self) -> None:
        if self._container_ready:
            return
        with contextlib.suppress(ResourceExistsError):
            self._service.create_container(self._container)
        self._container_ready = True

    # -- blobs ----------------------------------------------------------------------------

    def _blob(self, name: str) -> BlobClient:
        return self._service.get_blob_client(self._container, name)

    def delete(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._blob(check_name(name)).delete_blob(delete_snapshots="include")

    def exists(self, name: str) -> bool:
        return bool(self._blob(check_name(name)).exists())

    def location(self, name: str) -> str:
        return str(self._blob(check_name(name)).url)

    def name_of(self, location: str) -> str:
        prefix = f"{self._service.url.rstrip('/')}/{self._container}/"
        if not location.startswith(prefix):
            raise ConstraintViolation("not a location in this artifact container",
                                      field="location")
        from urllib.parse import unquote

        return check_name(unquote(location.removeprefix(prefix)))

    def close(self) -> None:
        self._service.close()
