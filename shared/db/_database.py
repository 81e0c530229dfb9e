"""The Postgres adapter boundary: a pool of psycopg 3 connections and error translation.

Every database error leaves this module as a domain error chosen by SQLSTATE class,
never by message text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.errors import Conflict, ConstraintViolation, DomainError, NotFound, Unavailable

# Constraint name -> the API field it protects, so a violation can name the field.
CONSTRAINT_FIELDS: dict[str, str] = {}


def register_constraint_fields(mapping: dict[str, str]) -> None:
    CONSTRAINT_FIELDS.update(mapping)


def _field_for(exc: psycopg.Error) -> str | None:
    diag = exc.diag
    name = diag.constraint_name
    if name and name in CONSTRAINT_FIELDS:
        return CONSTRAINT_FIELDS[name]
    return diag.column_name


def translate(exc: psycopg.Error) -> DomainError:
    """Map a psycopg error to the domain error its SQLSTATE class means."""
    state = exc.sqlstate or ""
    field = _field_for(exc)
    what = exc.diag.constraint_name or exc.diag.column_name or "value"
    if state == "23505":
        return Conflict(f"{field or what} already exists", field=field)
    if state == "23503":
        return ConstraintViolation(f"{field or what} refers to something that does not exist "
                                   "or is still referenced", field=field)
    if state.startswith("23"):
        return ConstraintViolation(f"{field or what} is not allowed here", field=field)
    if state.startswith("22"):
        return ConstraintViolation(f"{field or 'a value'} is malformed or out of range",
                                   field=field)
    if not state and isinstance(exc, psycopg.DataError):  # refused client-side, e.g. NUL
        return ConstraintViolation(f"{field or 'a value'} contains characters the database "
                                   "cannot store", field=field)
    if state == "P0002":
        return NotFound(exc.diag.message_primary or "not found")
    if state.startswith(("08", "57P", "53")) or not state:
        return Unavailable("database unavailable")
    raise exc


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except PoolTimeout:
        raise Unavailable("database unavailable: no connection free") from None
    except psycopg.Error as exc:
        raise translate(exc) from exc


class Database:
    """A pool of connections to one Postgres database.

    ``password`` may be a callable returning a fresh password (Entra token) for each new
    connection; the pool recycles connections before such tokens expire.
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 password: Callable[[], str] | None = None, max_lifetime: float = 3000.0,
                 timeout: float = 10.0) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": False}
        self.password = password
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, kwargs=kwargs, open=False,
            max_lifetime=max_lifetime, timeout=timeout, configure=self._configure,
            name="cloudops",
        )
        if password is not None:
            kwargs["password"] = password()  # the pool's own kwargs; refreshed per connection below
            self.pool.connection_class = _token_connection_class(password)

    def open(self, wait: bool = True) -> Database:
        self.pool.open(wait=wait, timeout=30)
        return self

    def close(self) -> None:
        self.pool.close()

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside one transaction, committed on success, errors translated."""
        with translate_errors(), self.pool.connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def statements(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection whose statements each commit on their own (autocommit): no BEGIN
        and COMMIT round trips. For reads that need no lock held between them (at READ
        COMMITTED each statement of a transaction reads its own snapshot anyway) and for
        a single statement that writes (atomic by itself); anything else uses
        ``transaction``."""
        with translate_errors(), self.pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                with contextlib.suppress(psycopg.Error):  # a broken one leaves the pool
                    conn.autocommit = False

    def fetch_one(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        with self.statements() as conn:
            return conn.execute(sql, params).fetchone()

    def fetch_all(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        with self.statements() as conn:
            return conn.execute(sql, params).fetchall()

    def ping(self) -> float:
        """Round-trip one query; return its latency in milliseconds or raise Unavailable."""
        start = time.perf_counter()
        self.fetch_one("SELECT 1")
        return (time.perf_counter() - start) * 1000


def _token_connection_class(password: Callable[[], str]) -> type[psycopg.Connection[Any]]:
    class TokenConnection(psycopg.Connection):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            kwargs["password"] = password()
            return super().connect(conninfo, **kwargs)

    return TokenConnection


__all__ = ["Database", "pg_errors", "register_constraint_fields", "translate", "translate_errors"]
