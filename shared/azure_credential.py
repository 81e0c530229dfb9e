"""The one Azure credential of the process, for adapters that have no connection string.

``DefaultAzureCredential`` finds the Function App's managed identity in Azure (with
``AZURE_CLIENT_ID`` naming the user-assigned identity) and a developer's ``az login`` on
a laptop. Built lazily and shared, because each instance keeps its own token cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.settings import Settings



@dataclass(frozen=True)
class AzureRole:
    """An Azure RBAC role an adapter needs on a resource type (checked against the Bicep).

    ``role_ids`` lists the built-in role definition ids that satisfy the need, least
    privileged first (a broader role assigned for another reason also counts).
    """

    need: str
    resource_type: str
    role_ids: tuple[str, ...]


# Built-in role definition ids (the same in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
SERVICE_BUS_DATA_OWNER = "090c5cfd-751d-490a-894a-3ce6f1109419"
SERVICE_BUS_DATA_SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
SERVICE_BUS_DATA_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
SIGNALR_APP_SERVER = "420fcaa2-552c-430f-98ca-3264be4806c7"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

_lock = threading.Lock()
_credentials: dict[str | None, TokenCredential] = {}


def azure_credential(settings: Settings) -> TokenCredential:
    """The shared ``DefaultAzureCredential`` for ``settings.azure_client_id``."""
    key = settings.azure_client_id
    with _lock:
        if key not in _credentials:
            from azure.identity import DefaultAzureCredential

            _credentials[key] = DefaultAzureCredential(managed_identity_client_id=key)
        return _credentials[key]
