"""The host's one error shape: RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

import json

from aiohttp import web


def problem(status: int, title: str, detail: str,
            headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(status=status, text=json.dumps(body),
                        content_type="application/problem+json", headers=headers)


async def read_json_object(request: web.Request) -> dict[str, object] | web.Response:
    """The request body as a JSON object, or a 4xx problem response saying what is wrong."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return problem(413, "Payload too large", "the request body exceeds the host's limit")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return problem(400, "Malformed JSON", f"request body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return problem(400, "Bad request", "request body must be a JSON object")
    return data
