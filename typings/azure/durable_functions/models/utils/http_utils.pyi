import asyncio

import aiohttp

_client_session: aiohttp.ClientSession | None
_session_lock: asyncio.Lock
