"""shared/ makes its HTTP calls through one pooled client, shared/httpclient.py."""

from __future__ import annotations

import re

from shared.httpclient import POOL_SIZE, STALE_RETRY, new_session, pool, session
from tests.conftest import ROOT

# Ways to open an HTTP connection other than shared.httpclient (Azure SDK clients use
# requests through azure-core's own transport and are not listed here).
OTHER_CLIENTS = re.compile(
    r"^\s*(import http\.client|from http\.client|import urllib\.request|from urllib\.request"
    r"|import httpx|import aiohttp)|requests\.(Session|get|post|put|delete|request)\("
    r"|PoolManager\(", re.M)


def test_no_module_in_shared_opens_http_on_its_own() -> None:
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "shared").rglob("*.py")
                 if path.name != "httpclient.py" and OTHER_CLIENTS.search(path.read_text())]
    assert not offenders, f"use shared.httpclient instead in {offenders}"


def test_the_process_shares_one_pooled_session_and_pool() -> None:
    assert session() is session()
    assert session().trust_env is False  # no proxy or netrc from the environment
    adapter = session().get_adapter("https://")
    assert adapter._pool_maxsize == POOL_SIZE  # type: ignore[attr-defined]
    assert adapter.max_retries.total == STALE_RETRY.total == 1  # type: ignore[attr-defined]
    assert pool() is adapter.poolmanager  # type: ignore[attr-defined]
    assert pool(2) is not pool()


def test_a_session_of_another_size_is_its_own() -> None:
    other = new_session(2)
    try:
        assert other is not session()
        assert other.get_adapter("http://")._pool_maxsize == 2  # type: ignore[attr-defined]
    finally:
        other.close()
