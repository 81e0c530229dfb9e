"""The database schema after every migration, as text: one line per fact, read from the
catalog with SQL (not ``pg_dump``, whose formatting changes between versions).

Tables with their columns (type, nullability, default, identity/generated) in column
order, constraints and indexes by name; sequences; functions; views; enum types. Only the
``public`` schema. The snapshot lives in ``tests/integration/schema.snapshot``;
``tests/integration/test_migrations.py`` compares it exactly.

Regenerate it after adding a migration, then review and commit the diff::

    CLOUDOPS_UPDATE_SCHEMA_SNAPSHOT=1 .venv/bin/python -m pytest \\
        tests/integration/test_migrations.py -k snapshot

(or ``.venv/bin/python -m tests.integration.schema_snapshot DATABASE_URL`` against a freshly
migrated database, which prints it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg

SNAPSHOT = Path(__file__).with_name("schema.snapshot")

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid, true)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
  AND k.contype <> 'n'  -- NOT NULL rows (Postgres 18+): the column line says it already
ORDER BY c.relname, k.conname
"""

_INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = 'public' ORDER BY tablename, indexname
"""

_SEQUENCES = """
SELECT sequencename, data_type::text, start_value, increment_by, min_value, max_value,
       cycle, cache_size
FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename
"""

_FUNCTIONS = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' ORDER BY p.proname, 2
"""

_VIEWS = """
SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY viewname
"""

_ENUMS = """
SELECT t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' GROUP BY t.typname ORDER BY t.typname
"""

_KINDS = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check",
          "x": "exclude", "t": "trigger"}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def dump(url: str) -> str:
    """The schema of the database at ``url`` as snapshot text."""
    with psycopg.connect(url) as conn:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        tables: dict[str, list[str]] = {}
        for table, column, kind, not_null, default, identity, generated in rows(_COLUMNS):
            line = f"  column {column} {kind}" + (" not null" if not_null else "")
            if default is not None:
                line += (" generated always as " if generated else " default ") + default
            if identity:
                line += " identity " + {"a": "always", "d": "by default"}[identity]
            tables.setdefault(table, []).append(line)
        for table, name, kind, definition in rows(_CONSTRAINTS):
            tables.setdefault(table, []).append(
                f"  constraint {name} ({_KINDS.get(kind, kind)}): {_one_line(definition)}")
        for table, name, definition in rows(_INDEXES):
            tables.setdefault(table, []).append(f"  index {name}: {_one_line(definition)}")
        out: list[str] = []
        for table in sorted(tables):
            out.append(f"table {table}")
            out.extend(tables[table])
        for seq in rows(_SEQUENCES):
            name, *facts = seq
            out.append(f"sequence {name}: " + ", ".join(str(f) for f in facts))
        for name, args, definition in rows(_FUNCTIONS):
            out.append(f"function {name}({args}): {_one_line(definition)}")
        for name, definition in rows(_VIEWS):
            out.append(f"view {name}: {_one_line(definition)}")
        for name, labels in rows(_ENUMS):
            out.append(f"enum {name}: {labels}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(dump(sys.argv[1]))
