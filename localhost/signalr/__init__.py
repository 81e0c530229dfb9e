"""Azure SignalR Service emulation for the local host (serverless mode: client endpoint,
JSON hub protocol over WebSockets, and the data-plane REST API)."""

from localhost.signalr.client import ClientOptions
from localhost.signalr.extension import CONNECTION_SETTING, SignalRExtension

__all__ = ["CONNECTION_SETTING", "ClientOptions", "SignalRExtension"]
