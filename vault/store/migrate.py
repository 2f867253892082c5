"""Apply Alembic migrations programmatically (``vault serve`` and tests do)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from vault.store.locks import exclusive

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to every head. Areas own separate branches off the base.

    Several API processes start at once on one database: under the deployment-wide
    migrations lock, the first applies the migrations and the others then find the
    schema at head and change nothing (unlocked, they raced to create the same tables).
    """
    with exclusive(engine, "migrations"):
        command.upgrade(alembic_config(engine), "heads")
