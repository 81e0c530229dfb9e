"""Postgres access: the connection pool, error translation, migrations, embedded server."""

from shared.db._database import Database, translate_errors
from shared.db.migrate import applied_migrations, apply_migrations

__all__ = ["Database", "applied_migrations", "apply_migrations", "translate_errors"]
