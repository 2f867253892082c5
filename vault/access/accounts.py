"""Patient accounts: the handle a patient uses, tied to their records and their chain id.

The chain never sees the handle or the record store's id: the patient's on-chain id is a
keyed hash (HMAC under a key derived from the pepper), so nobody without the pepper can
link a chain id to a vault account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from vault.errors import NotFound
from vault.store.access_models import PatientAccountRow
from vault.store.database import engine_of, first_row
from vault.store.models import utcnow


@dataclass(frozen=True)
class PatientAccount:
    handle: str
    record_patient_id: str
    chain_patient_id: bytes
    controller: str


def new_handle() -> str:
    return "pat_" + secrets.token_hex(12)


def chain_patient_id(pepper: bytes, handle: str) -> bytes:
    key = hmac.new(pepper, b"vault.chain-patient-id.v1", hashlib.sha256).digest()
    return hmac.new(key, handle.encode(), hashlib.sha256).digest()


_ACCOUNTS = PatientAccountRow.__table__
_BY_HANDLE = select(
    _ACCOUNTS.c.handle,
    _ACCOUNTS.c.record_patient_id,
    _ACCOUNTS.c.chain_patient_id,
    _ACCOUNTS.c.controller,
    _ACCOUNTS.c.deleted_at,
).where(_ACCOUNTS.c.handle == bindparam("handle"))


def _account(row: PatientAccountRow | Row[*tuple[Any, ...]]) -> PatientAccount:
    return PatientAccount(
        row.handle, row.record_patient_id, bytes.fromhex(row.chain_patient_id[2:]), row.controller
    )


class PatientAccounts:
    def __init__(
        self, *, session_factory: sessionmaker[Session], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._factory = session_factory
        self._engine = engine_of(session_factory)
        self._clock = clock

    def create(
        self, *, handle: str, record_patient_id: str, chain_id: bytes, controller: str
    ) -> PatientAccount:
        row = PatientAccountRow(
            handle=handle,
            record_patient_id=record_patient_id,
            chain_patient_id="0x" + chain_id.hex(),
            controller=controller,
            created_at=self._clock(),
        )
        with self._factory() as session, session.begin():
            session.add(row)
        return _account(row)

    def get(self, handle: str) -> PatientAccount:
        """The live account; :class:`NotFound` for unknown and deleted handles alike."""
        # Not the ORM: this runs on every request (see ``engine_of``).
        row = first_row(self._engine, _BY_HANDLE, handle=handle)
        if row is None or row.deleted_at is not None:
            raise NotFound("no such patient")
        return _account(row)

    def set_controller(self, handle: str, controller: str) -> None:
        with self._factory() as session, session.begin():
            session.execute(
                update(PatientAccountRow)
                .where(PatientAccountRow.handle == handle)
                .values(controller=controller)
            )

    def mark_deleted(self, handle: str) -> None:
        with self._factory() as session, session.begin():
            session.execute(
                update(PatientAccountRow)
                .where(PatientAccountRow.handle == handle)
                .values(deleted_at=self._clock())
            )
