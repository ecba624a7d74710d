"""Running the store's Alembic migrations from code: no alembic.ini needed.

The migration scripts live next to this module and ship inside the package, so an
installed callswitch upgrades its own database on start (``Store.open``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade_to_head"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant shared by every node: the key of the PostgreSQL advisory lock that keeps
# two nodes starting at once from running the same migration twice.
_MIGRATION_LOCK_KEY = 0x63616C6C  # "call"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations (and ``url``, if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolates '%': a percent-encoded password would break it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(connection: Connection) -> None:
    """``alembic upgrade head`` on an open connection (run it with ``run_sync``)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
