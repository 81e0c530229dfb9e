"""Postgres connection strings, built only through psycopg's conninfo parser.

A server may be named by a ``postgresql://`` URL or a libpq keyword DSN, and its host may
be a TCP name or a Unix-socket folder (the embedded server's ``host=/…/pgdata``). Gluing
``f"postgresql://{user}@{host}:{port}/{db}"`` together by hand turns a socket folder into
a path and the path into the database name, so everything here parses with
``conninfo_to_dict`` and writes with ``make_conninfo`` or a percent-encoding URL builder.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Parts a URL carries in its authority and path; everything else goes in the query string.
_URL_PARTS = ("user", "password", "host", "port", "dbname")


def with_database(conninfo: str, database: str) -> str:
    """The same server and credentials, another database (a keyword DSN)."""
    return make_conninfo(conninfo, dbname=database)


def postgres_url(conninfo: str, **overrides: Any) -> str:
    """A ``postgresql://`` URL for a URL or DSN, with ``overrides`` applied.

    Every part is percent-encoded, so a socket folder becomes ``%2Fpath%2Fto%2Fpgdata``
    in the authority (libpq reads it back as a socket host) and a password may hold
    ``@:/`` or spaces. Options libpq knows but a URL has no place for (``sslmode``,
    ``options`` …) travel in the query string.
    """
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    params.update({k: str(v) for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        params.pop(key, None)
    auth = ""
    if "user" in params:
        auth = quote(params["user"], safe="")
        if params.get("password"):
            auth += ":" + quote(params["password"], safe="")
        auth += "@"
    host = quote(params.get("host", ""), safe="")
    port = f":{params['port']}" if params.get("port") else ""
    path = "/" + quote(params["dbname"], safe="") if params.get("dbname") else ""
    query = urlencode({k: v for k, v in params.items() if k not in _URL_PARTS})
    return f"postgresql://{auth}{host}{port}{path}" + (f"?{query}" if query else "")
