"""The SignalR JSON hub protocol, version 1: framing and the few messages the service sends.

Every message is a JSON object followed by the record separator 0x1E; one WebSocket text
frame may carry several. Message types: 1 invocation, 3 completion, 6 ping, 7 close.
"""

from __future__ import annotations

import json
from typing import Any

RS = "\x1e"
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL_INVOCATION = 1, 2, 3, 4, 5
PING, CLOSE, ACK, SEQUENCE = 6, 7, 8, 9
KNOWN_TYPES = frozenset(range(1, 10))

PING_FRAME = json.dumps({"type": PING}) + RS
HANDSHAKE_OK = "{}" + RS


class ProtocolError(Exception):
    """A frame the JSON hub protocol does not allow; the connection is closed with it."""


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False) + RS


def invocation_frame(target: str, arguments: list[Any]) -> str:
    """A non-blocking invocation (no invocationId), as the service pushes events."""
    return dumps({"type": INVOCATION, "target": target, "arguments": arguments})


def close_frame(error: str | None = None, *, allow_reconnect: bool = False) -> str:
    body: dict[str, Any] = {"type": CLOSE}
    if error:
        body["error"] = error
        body["allowReconnect"] = allow_reconnect
    return dumps(body)


def handshake_error(error: str) -> str:
    return dumps({"error": error})


def split_frames(text: str) -> list[dict[str, Any]]:
    """Parse one WebSocket text frame into messages; raise ProtocolError when malformed."""
    if not text.endswith(RS):
        raise ProtocolError("message is not terminated by the record separator")
    messages = []
    for part in text.split(RS)[:-1]:
        try:
            message = json.loads(part)
        except ValueError:
            raise ProtocolError("message is not valid JSON") from None
        except RecursionError:  # nesting deeper than the parser's stack: refuse, not crash
            raise ProtocolError("message nests too deeply") from None
        if not isinstance(message, dict):
            raise ProtocolError("message is not a JSON object")
        messages.append(message)
    return messages


def parse_handshake(text: str) -> str | None:
    """Return an error text, or None when the handshake asks for JSON protocol v1."""
    try:
        messages = split_frames(text)
    except ProtocolError as exc:
        return f"Handshake failed: {exc}"
    # Records after the handshake in the same frame (a client's first ping) are harmless.
    request = messages[0]
    protocol, version = request.get("protocol"), request.get("version")
    if protocol != "json":
        return f"The protocol '{protocol}' is not supported."
    if version != 1:
        return f"The server does not support version {version} of the 'json' protocol."
    return None


def check_message(message: dict[str, Any]) -> int:
    kind = message.get("type")
    if not isinstance(kind, int) or isinstance(kind, bool) or kind not in KNOWN_TYPES:
        raise ProtocolError("message has no valid 'type'")
    return kind
