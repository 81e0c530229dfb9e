"""The one Azure credential of the process, for adapters that have no connection string.

``DefaultAzureCredential`` finds the Function App's managed identity in Azure (with
``AZURE_CLIENT_ID`` naming the user-assigned identity) and a developer's ``az login`` on
a laptop. Built lazily and shared, because each instance keeps its own token cache.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.settings import Settings

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
