"""Database backup and restore with the Postgres client tools.

The agent resolves a connection *name* from its own config; the control plane never sees
credentials. A connection is a ``postgresql://`` URL (a Unix-socket host too:
``postgresql://u@/db?host=/run/pg`` or ``postgresql://u@%2Frun%2Fpg/db``) or a libpq
keyword DSN (``host=/run/pg dbname=db user=u``); it is only ever taken apart and put back
together by libpq's own parser (``psycopg.conninfo``), never by string surgery. The
password travels to the tools through ``PGPASSWORD``, never on a command line: they get a
keyword conninfo without it. The tools come from the folder ``agent.pgtools`` picks for
the connection's server, by absolute path. Artifacts move over the short-lived URLs the
control plane issues (Azure Blob SAS, or the local host's artifact endpoint) with a plain
HTTP PUT / GET; the sha256 is computed while streaming.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import requests
from psycopg.conninfo import make_conninfo

from agent import process
from agent.handlers import JobCancelled, JobContext, JobFailed, check_serves, require
from agent.pgtools import ClientTools, connection_params, tools_for

CHUNK = 1024 * 1024
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
MAINTENANCE_DB = "postgres"


def connection_url(ctx: JobContext, name: str, payload: dict[str, Any]) -> str:
    """The URL of the connection ``name``, if it serves the job's project/environment."""
    found = ctx.config.connection(name)
    if found is None:
        raise JobFailed(f"this agent has no database connection named {name!r}")
    url, scope = found
    check_serves(payload, "connection", name, scope)
    return url


def split_password(url: str, database: str | None = None) -> tuple[str, dict[str, str]]:
    """A keyword conninfo without the password (safe in argv; every tool accepts one as
    ``--dbname`` or ``--maintenance-db``) and the libpq env carrying the password.
    ``database`` replaces the connection's database."""
    params = connection_params(url)
    password = params.pop("password", None)
    if database is not None:
        params["dbname"] = database
    return make_conninfo(**params), {"PGPASSWORD": str(password)} if password else {}


def with_database(url: str, database: str) -> str:
    """The same connection (password included) to another database on its server."""
    return make_conninfo(**(connection_params(url) | {"dbname": database}))


def database_name(url: str) -> str:
    """The database a connection opens; libpq defaults it to the user name."""
    params = connection_params(url)
    return str(params.get("dbname") or params.get("user") or "")


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {k: os.environ[k] for k in BASE_ENV if k in os.environ} | extra


class _HashingReader:
    """A file wrapper that hashes what it hands to the uploader."""

    def __init__(self, f: BinaryIO, ctx: JobContext, length: int) -> None:
        self._f, self._ctx, self._length = f, ctx, length
        self.sha = hashlib.sha256()
        self.size = 0

    def __len__(self) -> int:  # lets requests send Content-Length (Blob PUT needs it)
        return self._length - self.size

    def read(self, n: int = -1) -> bytes:
        self._ctx.check_cancel()
        data = self._f.read(CHUNK if n is None or n < 0 else min(n, CHUNK))
        self.sha.update(data)
        self.size += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk


def _upload(path: Path, url: str, ctx: JobContext) -> tuple[int, str]:
    size = path.stat().st_size
    with path.open("rb") as f:
        reader = _HashingReader(f, ctx, size)
        try:
            resp = requests.put(url, data=reader, timeout=(10, 600), headers={
                "x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"})
        except requests.RequestException as exc:
            raise JobFailed(f"upload failed: {type(exc).__name__}") from None
    if resp.status_code >= 300:
        raise JobFailed(f"upload refused: HTTP {resp.status_code}")
    if reader.size != size:
        raise JobFailed(f"upload sent {reader.size} of {size} bytes")
    return size, reader.sha.hexdigest()


def _dump(url: str, target: Path, ctx: JobContext, tools: ClientTools) -> None:
    safe_url, env = split_password(url)
    outcome = process.run(
        [tools.path("pg_dump"), "-Fc", "--no-password", "--dbname", safe_url,
         "--file", str(target)],
        env=_env(env), on_line=lambda line: ctx.log(f"pg_dump: {line}"), cancel=ctx.cancel)
    if outcome.cancelled:
        raise JobCancelled("cancelled during pg_dump")
    if outcome.exit_code != 0:
        raise JobFailed(f"pg_dump exited with code {outcome.exit_code}")


def _backup_to(url: str, upload_url: str, artifact: str, ctx: JobContext,
               workdir: Path, label: str, tools: ClientTools) -> dict[str, Any]:
    target = workdir / f"{label}.dump"
    started = time.monotonic()
    ctx.log(f"{label}: running pg_dump -Fc")
    _dump(url, target, ctx, tools)
    ctx.log(f"{label}: uploading {target.stat().st_size} bytes as {artifact}")
    size, sha = _upload(target, upload_url, ctx)
    target.unlink(missing_ok=True)
    ctx.log(f"{label}: uploaded {size} bytes, sha256 {sha}")
    return {"sizeBytes": size, "sha256": sha, "artifact": artifact,
            "durationMs": int((time.monotonic() - started) * 1000),
            "toolVersions": {"pg_dump": tools.version.text}}


def _workdir(ctx: JobContext) -> Path:
    base = ctx.config.work_path / "jobs"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{ctx.job_id}-", dir=base))


def backup(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    name = require(payload, "connection")
    url = connection_url(ctx, name, payload)
    upload_url = require(payload, "uploadUrl")
    artifact = require(payload, "artifact")
    tools = tools_for(ctx, name, url)
    workdir = _workdir(ctx)
    try:
        ctx.progress(5)
        result = _backup_to(url, upload_url, artifact, ctx, workdir, "backup", tools)
        ctx.progress(100)
        return result
    finally:
        _cleanup(workdir)


def _download(url: str, target: Path, ctx: JobContext) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    try:
        with requests.get(url, stream=True, timeout=(10, 600)) as resp:
            if resp.status_code != 200:
                raise JobFailed(f"download refused: HTTP {resp.status_code}")
            with target.open("wb") as f:
                for chunk in resp.iter_content(CHUNK):
                    ctx.check_cancel()
                    sha.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
    except requests.RequestException as exc:
        raise JobFailed(f"download failed: {type(exc).__name__}") from None
    return size, sha.hexdigest()


def _database_exists(url: str, ctx: JobContext, tools: ClientTools) -> bool:
    """Whether the connection's database exists (asks the server's maintenance database)."""
    name = database_name(url)
    maintenance, env = split_password(url, MAINTENANCE_DB)
    lines: list[str] = []
    outcome = process.run(
        [tools.path("psql"), "--no-password", "-Atq", "--dbname", maintenance, "-c",
         f"SELECT 1 FROM pg_database WHERE datname = '{name.replace(chr(39), chr(39) * 2)}'"],
        env=_env(env), on_line=lines.append)
    if outcome.exit_code != 0:
        raise JobFailed("cannot reach the database server: " + " ".join(lines[-3:]))
    return "1" in lines


def _create_database(url: str, ctx: JobContext, tools: ClientTools) -> None:
    name = database_name(url)
    maintenance, env = split_password(url, MAINTENANCE_DB)
    outcome = process.run(
        [tools.path("createdb"), "--no-password", "--maintenance-db", maintenance, name],
        env=_env(env), on_line=lambda line: ctx.log(f"createdb: {line}"))
    if outcome.exit_code != 0:
        raise JobFailed(f"createdb {name} exited with code {outcome.exit_code}")


def restore(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    name = require(payload, "connection")
    url = connection_url(ctx, name, payload)
    download_url = require(payload, "downloadUrl")
    expected = require(payload, "sha256").lower()
    # the server is asked through the configured database: a new target may not exist yet
    tools = tools_for(ctx, name, url)
    if payload.get("database"):
        url = with_database(url, str(payload["database"]))
    workdir = _workdir(ctx)
    try:
        artifact = workdir / "restore.dump"
        ctx.log("downloading the backup")
        size, sha = _download(download_url, artifact, ctx)
        if sha != expected:
            raise JobFailed(f"sha256 mismatch: the backup is {sha}, expected {expected};"
                            " nothing was restored")
        ctx.log(f"downloaded {size} bytes, sha256 verified")
        ctx.progress(25)
        safety: dict[str, Any] | None = None
        if payload.get("createDatabase") and not _database_exists(url, ctx, tools):
            ctx.log("target database does not exist yet: creating it (no safety backup)")
            _create_database(url, ctx, tools)
        else:
            safety = _backup_to(url, require(payload, "safetyUploadUrl"),
                                require(payload, "safetyArtifact"), ctx, workdir,
                                "safety backup", tools)
        ctx.progress(60)
        ctx.check_cancel()
        safe_url, env = split_password(url)
        ctx.log("running pg_restore --clean --if-exists")
        outcome = process.run(
            [tools.path("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
             "--no-password", "--exit-on-error", "--single-transaction",
             "--dbname", safe_url, str(artifact)],
            env=_env(env), on_line=lambda line: ctx.log(f"pg_restore: {line}"),
            cancel=ctx.cancel)
        if outcome.cancelled:
            raise JobCancelled("cancelled during pg_restore (its transaction rolled back)")
        if outcome.exit_code != 0:
            raise JobFailed(f"pg_restore exited with code {outcome.exit_code}; the restore"
                            " ran in one transaction and was rolled back")
        ctx.progress(100)
        return {"safetyBackup": safety, "sizeBytes": size, "sha256": sha}
    finally:
        _cleanup(workdir)


def _cleanup(workdir: Path) -> None:
    for child in workdir.glob("*"):
        child.unlink(missing_ok=True)
    workdir.rmdir()


def drop_database(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Drop a sandbox's database (``dropdb --if-exists --force``: safe to repeat).

    Refuses the connection's own database: that is the parent environment's data.
    """
    name = require(payload, "connection")
    url = connection_url(ctx, name, payload)
    database = require(payload, "database")
    if database == database_name(url) or database in (
            MAINTENANCE_DB, "template0", "template1"):
        raise JobFailed(f"refusing to drop {database!r}: it is not a sandbox database")
    tools = tools_for(ctx, name, url)
    maintenance, env = split_password(url, MAINTENANCE_DB)
    ctx.log(f"dropping database {database}")
    outcome = process.run([tools.path("dropdb"), "--no-password", "--if-exists", "--force",
                           "--maintenance-db", maintenance, database],
                          env=_env(env), on_line=lambda line: ctx.log(f"dropdb: {line}"))
    if outcome.exit_code != 0:
        raise JobFailed(f"dropdb {database} exited with code {outcome.exit_code}")
    return {"database": database, "dropped": True}
