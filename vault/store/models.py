"""The declarative base shared by every table, and the chain deployment record.

Each area keeps its tables in its own module (``vault/store/<area>_models.py``) on this
``Base``; Alembic migrations under ``vault/store/migrations/versions`` create them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def stored_utc(moment: datetime) -> datetime: ...
@overload
def stored_utc(moment: None) -> None: ...
def stored_utc(moment: datetime | None) -> datetime | None:
    """A time read from a ``DateTime(timezone=True)`` column, with its zone: SQLite returns
    such values naive, and the vault only ever stores UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class ChainDeployment(Base):
    """Where the consent contract lives on one chain, as this vault deployed it.

    Kept in SQL (not a local file) so every API process sharing the database agrees.
    """

    __tablename__ = "chain_deployments"

    chain_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(Integer)
    code_hash: Mapped[str] = mapped_column(String(66))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
