"""Database.statements: each statement commits on its own (no BEGIN/COMMIT round trips),
and the connection goes back to the pool transactional again, even after an error."""

from __future__ import annotations

import psycopg
import pytest

from shared.db import Database


def test_statements_commit_on_their_own_and_the_pool_gets_a_transactional_connection(
        db: Database) -> None:
    with db.statements() as conn:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS stmt_probe (n int)")
        conn.execute("INSERT INTO stmt_probe VALUES (1)")
        assert conn.info.transaction_status.name == "IDLE"  # already committed
    with pytest.raises(psycopg.Error), db.statements() as conn:
        conn.execute("INSERT INTO no_such_table VALUES (1)")
    for _ in range(3):  # whichever connection comes back: transactional again
        with db.transaction() as conn:
            assert conn.autocommit is False
    assert db.fetch_one("SELECT 1 AS one") == {"one": 1}
