"""The Postgres handlers: connection strings go through libpq's parser only, the password
never reaches argv, and a real backup → restore → drop round trip runs against the
embedded server (PostgreSQL 18, Unix socket only) with the tools ``agent.pgtools`` picks,
artifacts moving over a tiny local HTTP server the way they move over Blob SAS URLs."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from agent import pgtools, process
from agent.config import AgentConfig
from agent.handlers import JobContext, JobFailed
from agent.handlers import postgres as pg

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "p@ss:w/rd %x"
ENCODED = quote(PASSWORD, safe="")
SOCKET = "/run/postgresql sockets"  # a space, to prove nothing splits on it

# the same connection, written each way an agent config may hold it
FORMS = {
    "tcp url": f"postgresql://app:{ENCODED}@db.example:5433/shop?sslmode=require",
    "socket url": f"postgresql://app:{ENCODED}@/shop?host={quote(SOCKET)}",
    "encoded socket url": f"postgresql://app:{ENCODED}@{quote(SOCKET, safe='')}/shop",
    "tcp keywords": f"host=db.example port=5433 dbname=shop user=app password='{PASSWORD}'"
                    " sslmode=require",
    "socket keywords": f"host='{SOCKET}' dbname=shop user=app password='{PASSWORD}'",
}
HOSTS = {"tcp url": "db.example", "socket url": SOCKET, "encoded socket url": SOCKET,
         "tcp keywords": "db.example", "socket keywords": SOCKET}


# --- connection strings --------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_split_password_moves_the_password_to_the_environment(form: str) -> None:
    safe, env = pg.split_password(FORMS[form])
    assert env == {"PGPASSWORD": PASSWORD}
    assert "p@ss" not in safe and "password" not in safe
    params = conninfo_to_dict(safe)
    assert (params["host"], params["dbname"], params["user"]) == (HOSTS[form], "shop", "app")
    if form.startswith("tcp"):
        assert (params["port"], params["sslmode"]) == ("5433", "require")


@pytest.mark.parametrize("form", FORMS)
def test_split_password_swaps_the_database(form: str) -> None:
    safe, env = pg.split_password(FORMS[form], "postgres")
    params = conninfo_to_dict(safe)
    assert (params["host"], params["dbname"]) == (HOSTS[form], "postgres")
    assert env == {"PGPASSWORD": PASSWORD}


def test_split_password_without_a_password() -> None:
    safe, env = pg.split_password("postgresql://app@/shop?host=/tmp")
    assert env == {}
    assert conninfo_to_dict(safe) == {"user": "app", "dbname": "shop", "host": "/tmp"}


@pytest.mark.parametrize("form", FORMS)
def test_with_database_keeps_everything_else(form: str) -> None:
    moved = conninfo_to_dict(pg.with_database(FORMS[form], "sandbox 'one'"))
    assert moved == conninfo_to_dict(FORMS[form]) | {"dbname": "sandbox 'one'"}


@pytest.mark.parametrize("form", FORMS)
def test_database_name(form: str) -> None:
    assert pg.database_name(FORMS[form]) == "shop"


def test_database_name_defaults_to_the_user_like_libpq() -> None:
    assert pg.database_name("postgresql://app@db.example") == "app"
    assert pg.database_name("host=/tmp user=app") == "app"


def test_an_unparseable_connection_fails_without_echoing_it() -> None:
    with pytest.raises(JobFailed) as failed:
        pg.split_password(f"host=/tmp password='{PASSWORD}' dbname")
    assert PASSWORD not in str(failed.value)


# --- the real round trip on the embedded server --------------------------------------

class _ArtifactStore(BaseHTTPRequestHandler):
    """PUT stores the body under its path, GET serves it: the artifact URLs' contract."""

    blobs: dict[str, bytes] = {}

    def do_PUT(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None:
            self._answer(411)
            return
        self.blobs[self.path] = self.rfile.read(int(length))
        self._answer(201)

    def do_GET(self) -> None:
        body = self.blobs.get(self.path)
        self._answer(200 if body is not None else 404, body or b"")

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def artifacts() -> Iterator[tuple[str, dict[str, bytes]]]:
    blobs: dict[str, bytes] = {}
    handler = type("Store", (_ArtifactStore,), {"blobs": blobs})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", blobs
    server.shutdown()
    server.server_close()


@pytest.fixture
def embedded_db() -> Iterator[tuple[str, str]]:
    """A fresh database on the embedded server: (admin URL, its name)."""
    from shared.db.embedded import embedded_server_url

    admin = embedded_server_url(ROOT / ".cloudops", "postgres")
    name = f"pgtools_rt_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(pg.with_database(admin, name)) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items VALUES (1, 'alpha'), (2, 'it''s; rm -rf /'),"
                     " (3, 'γάμμα')")
    yield admin, name
    with psycopg.connect(admin, autocommit=True) as conn:
        for db in (name, f"{name}_copy"):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()


def _exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


@pytest.fixture
def argv_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    """Every command the handlers run, with its environment (still run for real)."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    real = process.run

    def recording(argv: Sequence[str], *, env: Mapping[str, str],
                  **kw: Any) -> process.Outcome:
        seen.append((list(argv), dict(env)))
        return real(argv, env=env, **kw)

    monkeypatch.setattr(process, "run", recording)
    return seen


def test_backup_restore_and_drop_on_the_embedded_server(
        embedded_db: tuple[str, str], artifacts: tuple[str, dict[str, bytes]],
        argv_seen: list[tuple[list[str], dict[str, str]]], tmp_path: Path) -> None:
    admin, name = embedded_db
    base, blobs = artifacts
    host = conninfo_to_dict(admin)["host"]
    secret = "not-checked; the socket trusts: s3cr@t:/ %"
    connections = {  # one database, written three ways (the socket host trusts any password)
        "url": f"postgresql://postgres:{quote(secret, safe='')}@/{name}?host={quote(host)}",
        "keywords": f"host='{host}' dbname={name} user=postgres password='{secret}'",
        "encoded": f"postgresql://postgres@{quote(host, safe='')}/{name}",
    }
    lines: list[str] = []
    ctx = JobContext(job_id="rt", kind="backup", log=lines.append, progress=lambda _n: None,
                     config=AgentConfig(url="http://x", agent_id="a", name="a", pool="p",
                                        key="k", work_dir=str(tmp_path),
                                        connections=connections))
    original = _rows(pg.with_database(admin, name))
    pgtools.clear_caches()

    backup = pg.backup({"connection": "url", "uploadUrl": f"{base}/b1", "artifact": "b1"},
                       ctx)
    assert backup["sha256"] == hashlib.sha256(blobs["/b1"]).hexdigest()
    assert backup["sizeBytes"] == len(blobs["/b1"]) > 0

    with psycopg.connect(pg.with_database(admin, name)) as conn:
        conn.execute("DELETE FROM items WHERE id = 1")
        conn.execute("UPDATE items SET name = 'changed'")
    restored = pg.restore({"connection": "keywords", "downloadUrl": f"{base}/b1",
                           "sha256": backup["sha256"], "safetyUploadUrl": f"{base}/s1",
                           "safetyArtifact": "s1"}, ctx)
    assert _rows(pg.with_database(admin, name)) == original
    assert restored["safetyBackup"]["sha256"] == hashlib.sha256(blobs["/s1"]).hexdigest()

    copy = f"{name}_copy"
    into_new = pg.restore({"connection": "encoded", "downloadUrl": f"{base}/b1",
                           "sha256": backup["sha256"], "database": copy,
                           "createDatabase": True}, ctx)
    assert into_new["safetyBackup"] is None
    assert _rows(pg.with_database(admin, copy)) == original

    assert pg.drop_database({"connection": "encoded", "database": copy}, ctx) == {
        "database": copy, "dropped": True}
    assert not _exists(admin, copy)

    wheel = pgtools.embedded_folder()
    assert wheel is not None
    used = {Path(argv[0]).name: Path(argv[0]).parent for argv, _ in argv_seen}
    assert used == dict.fromkeys(("pg_dump", "pg_restore", "psql", "createdb", "dropdb"),
                                 wheel)
    for argv, _ in argv_seen:
        assert not any("s3cr@t" in arg for arg in argv), argv
    passwords = [(Path(argv[0]).name, env.get("PGPASSWORD")) for argv, env in argv_seen]
    assert passwords == [("pg_dump", secret),  # backup over "url"
                         ("pg_dump", secret), ("pg_restore", secret),  # over "keywords"
                         ("psql", None), ("createdb", None), ("pg_restore", None),
                         ("dropdb", None)]  # over "encoded": no password
    assert sum(line.startswith("using pg_dump 18") and str(wheel) in line
               for line in lines) == 4  # once per job: backup, two restores, drop


def test_the_older_system_tools_named_in_pg_bin_dir_are_used_and_fail_cleanly(
        embedded_db: tuple[str, str], artifacts: tuple[str, dict[str, bytes]],
        tmp_path: Path) -> None:
    """The issue this module fixes, kept visible: pg_dump 15 refuses server 18. An
    explicit pgBinDir is trusted, so the job fails with pg_dump's own reason."""
    from shutil import which

    admin, name = embedded_db
    base, _ = artifacts
    system = which("pg_dump")
    assert system, "the system PostgreSQL client tools (pg_dump) are not on PATH"
    old = pgtools.folder_version(Path(system).parent)
    assert old is not None and old.major < 18, f"this test needs system tools older than 18 ({old})"
    lines: list[str] = []
    ctx = JobContext(job_id="old", kind="backup", log=lines.append, progress=lambda _n: None,
                     config=AgentConfig(url="http://x", agent_id="a", name="a", pool="p",
                                        key="k", work_dir=str(tmp_path),
                                        pg_bin_dir=str(Path(system).parent),
                                        connections={"db": pg.with_database(admin, name)}))
    with pytest.raises(JobFailed, match="pg_dump exited with code 1"):
        pg.backup({"connection": "db", "uploadUrl": f"{base}/b", "artifact": "b"}, ctx)
    assert any("server version mismatch" in line for line in lines), lines
