"""Backup artifact storage: the ``ArtifactStore`` port, its adapters and the factory.

``BlobArtifactStore`` in Azure (SAS URLs), ``LocalArtifactStore`` offline (files under
``<CLOUDOPS_HOME>/artifacts`` behind HMAC-signed URLs served by /api/artifacts/{name}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.artifacts._local import LocalArtifactStore, local_secret
from shared.artifacts._port import ArtifactStore, PayloadTooLarge, check_name

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.settings import Settings


def make_artifact_store(settings: Settings, clock: Clock | None = None) -> ArtifactStore:
    """Blob storage when storage is configured in Azure mode, else the local disk."""
    from shared.settings import SettingsError

    if settings.mode == "azure":
        from shared.artifacts._blob import BlobArtifactStore

        if settings.storage_connection:
            return BlobArtifactStore.from_connection_string(
                settings.storage_connection, settings.artifact_container, clock)
        if settings.blob_endpoint:
            from shared.azure_credential import azure_credential

            return BlobArtifactStore.from_endpoint(
                settings.blob_endpoint, settings.artifact_container,
                azure_credential(settings), clock)
        raise SettingsError("AzureWebJobsStorage__blobServiceUri",
                            "artifact store needs it or AzureWebJobsStorage")
    secret = local_secret(settings.artifact_secret, settings.home)
    return LocalArtifactStore(settings.home / "artifacts", secret, settings.local_host_url,
                              clock=clock, max_bytes=settings.artifact_max_bytes)


__all__ = ["ArtifactStore", "LocalArtifactStore", "PayloadTooLarge", "check_name",
           "make_artifact_store"]
