"""The embedded server a newcomer gets when DATABASE_URL is unset really boots and migrates."""

import shutil
from pathlib import Path

import psycopg
import pytest

from shared.db import Database, apply_migrations
from shared.db.embedded import embedded_server_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.embedded
@pytest.mark.slow
def test_embedded_server_starts_migrates_and_answers() -> None:
    url = embedded_server_url(ROOT / ".cloudops", database="cloudops_embedded_check")
    apply_migrations(url)
    db = Database(url, max_size=1).open()
    try:
        assert db.ping() >= 0
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        assert int(version.split(".")[0]) >= 15
    finally:
        db.close()
    assert shutil.which("pg_dump")  # agent handlers rely on the client tools
