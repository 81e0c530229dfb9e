"""Real-time updates to browsers: the Realtime port, its SignalR REST adapter, a fake,
and the event helpers every publisher uses (``shared.realtime.events``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.realtime.connection_string import parse_connection_string
from shared.realtime.fake import InMemoryRealtime
from shared.realtime.port import ConnectionInfo, Realtime
from shared.realtime.rest import RestRealtime
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger("cloudops.realtime")

__all__ = ["ConnectionInfo", "InMemoryRealtime", "Realtime", "RestRealtime", "make_realtime"]


def make_realtime(settings: Settings) -> Realtime:
    """The adapter the settings ask for.

    ``AzureSignalRConnectionString`` with an AccessKey signs tokens with the key (Azure with
    keys, and the local host, which sets this variable); without a key, or with only
    ``AzureSignalRConnectionString__serviceUri``, managed identity is used through
    ``DefaultAzureCredential``. With neither, publishing is disabled (logged once) and
    ``negotiate`` answers 503.
    """
    if settings.signalr_connection_string:
        service = parse_connection_string(settings.signalr_connection_string)
        if service.access_key:
            return RestRealtime(service, settings.signalr_hub)
        return RestRealtime(service, settings.signalr_hub,
                            credential=_credential(settings, service.client_id))
    if settings.signalr_endpoint:
        endpoint = settings.signalr_endpoint.rstrip("/")
        service = parse_connection_string(f"Endpoint={endpoint};AuthType=azure.msi;")
        return RestRealtime(service, settings.signalr_hub,
                            credential=_credential(settings, None))
    log.warning("realtime: no AzureSignalRConnectionString; browser updates are disabled")
    return InMemoryRealtime(settings.signalr_hub, configured=False)


def _credential(settings: Settings, client_id: str | None) -> TokenCredential:
    """The process's shared Azure credential (a connection string may name its own
    user-assigned identity with ``ClientId=``)."""
    from shared.azure_credential import azure_credential

    if client_id:
        settings = settings.model_copy(update={"azure_client_id": client_id})
    return azure_credential(settings)
