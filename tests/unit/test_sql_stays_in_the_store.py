"""SQL lives in ``shared/store`` (and the migrations in ``shared/db``): activities, HTTP
handlers, schedules and the task queue call store functions. A string literal that reads
as SQL anywhere else fails this test, unless its file is on the allow-list below."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.parse_python import parse

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("shared", "functions", "localhost", "agent", "cli", "function_app.py")
HOME = ("shared/store/", "shared/db/")

# Files whose SQL is not our control plane's data, each with the reason.
ALLOWED = {
    # The local host's durable-task backend is a store of its own: localhost/ is a general
    # Functions host that knows nothing of projects, so it must not import shared.store.
    "localhost/durable/pg_store.py",
    # The Postgres adapter behind the task-log port (shared/logs/_port.py); its two other
    # adapters (Table storage, memory) hold no SQL, and the port's contract tests run all
    # three the same way, so the adapter stays beside its port.
    "shared/logs/_postgres.py",
    # Runs psql against the customer's database on the agent's machine, not ours.
    "agent/handlers/postgres.py",
    # Creates and fills the demo application's own database (`cloudops demo`).
    "cli/demo.py",
}

SQL = re.compile(r"\b(SELECT\b[\s\S]*\bFROM\b|INSERT\s+INTO\b|UPDATE\s+\w+(\s+\w+)?\s+SET\b"
                 r"|DELETE\s+FROM\b|LISTEN\s|NOTIFY\s|FOR\s+UPDATE\b)")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                    ast.Constant):
                found.add(id(body[0].value))
    return found


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal that reads as SQL, docstrings aside; an
    f-string is judged with each placeholder read as a name."""
    tree = parse(source, Path("<source>"))
    docstrings = _docstrings(tree)
    inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for v in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                           else "x" for v in node.values)  # a placeholder stands for a name
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings and id(node) not in inner):
            text = node.value
        else:
            continue
        if SQL.search(text):
            found.append((node.lineno, text))
    return found


def _python_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def test_the_scanner_sees_sql_and_not_prose() -> None:
    code = ('def f(conn, t):\n'
            '    """Rows are taken FOR UPDATE SKIP LOCKED; SELECT what FROM where."""\n'
            '    conn.execute("SELECT id FROM tasks"\n'
            '                 " WHERE x = %s", (1,))\n'
            '    conn.execute(f"UPDATE {t} SET a = 1")\n'
            '    return "select a value from the list"\n')
    assert [line for line, _ in sql_literals(code)] == [3, 5]


def test_sql_only_in_the_store() -> None:
    offenders = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(HOME) or rel in ALLOWED:
            continue
        offenders += [f"{rel}:{line}: {text[:60]!r}"
                      for line, text in sql_literals(path.read_text())]
    assert not offenders, "SQL outside shared/store:\n" + "\n".join(offenders)


@pytest.mark.parametrize("allowed", sorted(ALLOWED))
def test_every_allowed_file_still_holds_sql(allowed: str) -> None:
    assert sql_literals((ROOT / allowed).read_text()), f"{allowed} needs no allowance now"
