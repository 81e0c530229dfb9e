"""Parse ``AzureSignalRConnectionString`` (``Endpoint=...;AccessKey=...;Version=1.0;``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shared.settings import SettingsError

SETTING = "AzureSignalRConnectionString"


@dataclass(frozen=True)
class ServiceEndpoint:
    endpoint: str
    access_key: str | None
    client_endpoint: str
    client_id: str | None = None  # user-assigned managed identity, when AuthType=azure.msi

    def __repr__(self) -> str:  # never print the key
        key = "<set>" if self.access_key else None
        return f"ServiceEndpoint(endpoint={self.endpoint!r}, access_key={key})"


def _with_port(url: str, port: str | None) -> str:
    if not port:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{parts.hostname}:{port}", parts.path, "", ""))


def parse_connection_string(value: str) -> ServiceEndpoint:
    fields: dict[str, str] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        name, sep, val = item.partition("=")
        if not sep:
            raise SettingsError(SETTING, f"malformed item {name.strip()!r} (expected Name=Value)")
        fields[name.strip().lower()] = val.strip()
    endpoint = fields.get("endpoint", "")
    if not endpoint.startswith(("http://", "https://")):
        raise SettingsError(SETTING, "Endpoint must be an http(s) URL")
    endpoint = _with_port(endpoint.rstrip("/"), fields.get("port"))
    key = fields.get("accesskey") or None
    auth = fields.get("authtype", "").lower()
    if key is None and auth not in ("aad", "azure", "azure.msi", "azure.app"):
        raise SettingsError(SETTING, "needs AccessKey, or AuthType=azure.msi for identity")
    client = fields.get("clientendpoint", "").rstrip("/") or endpoint
    return ServiceEndpoint(endpoint=endpoint, access_key=key, client_endpoint=client,
                           client_id=fields.get("clientid") or None)
