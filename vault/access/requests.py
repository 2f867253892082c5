"""Providers' access requests and their life cycle.

``pending`` -> ``approving`` (claimed before the grant is relayed) -> ``granted`` only
after the grant's receipt; ``pending`` -> ``denied`` by the patient. A relayed transaction
that fails or is dropped puts the request back to ``pending`` (with the error code noted)
so it can be retried; a process that died while ``approving`` leaves a request that can
be approved again (re-granting the same terms on chain is harmless) but no longer denied
(its grant may be on chain). Transitions are conditional UPDATEs, so two processes
deciding the same request cannot both win.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from vault.access.scopes import check_purpose, check_scope
from vault.errors import Conflict, InvalidInput, NotFound
from vault.store.access_models import AccessRequestRow
from vault.store.models import stored_utc, utcnow

MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=366)


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVING = "approving"
    GRANTED = "granted"
    DENIED = "denied"


@dataclass(frozen=True)
class AccessRequest:
    request_id: str
    patient_handle: str
    provider: str
    scope: str
    purpose: str
    duration_seconds: int
    status: RequestStatus
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None
    tx_hash: str | None
    error_code: str | None


def _request(row: AccessRequestRow) -> AccessRequest:
    return AccessRequest(
        request_id=row.request_id,
        patient_handle=row.patient_handle,
        provider=row.provider,
        scope=row.scope,
        purpose=row.purpose,
        duration_seconds=row.duration_seconds,
        status=RequestStatus(row.status),
        created_at=stored_utc(row.created_at),
        decided_at=stored_utc(row.decided_at),
        expires_at=stored_utc(row.expires_at),
        tx_hash=row.tx_hash,
        error_code=row.error_code,
    )


class AccessRequestBook:
    def __init__(
        self, *, session_factory: sessionmaker[Session], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._factory = session_factory
        self._clock = clock

    def create(
        self, *, patient_handle: str, provider: str, scope: str, purpose: str, duration_seconds: int
    ) -> AccessRequest:
        check_scope(scope)
        check_purpose(purpose)
        if not MIN_DURATION.total_seconds() <= duration_seconds <= MAX_DURATION.total_seconds():
            raise InvalidInput(
                "duration must be between one minute and a year",
                details={"field": "duration_seconds"},
            )
        row = AccessRequestRow(
            request_id="req_" + secrets.token_hex(12),
            patient_handle=patient_handle,
            provider=provider,
            scope=scope,
            purpose=purpose,
            duration_seconds=duration_seconds,
            status=RequestStatus.PENDING.value,
            created_at=self._clock(),
        )
        with self._factory() as session, session.begin():
            session.add(row)
        return _request(row)

    def get(self, request_id: str) -> AccessRequest:
        with self._factory() as session:
            row = session.get(AccessRequestRow, request_id)
            if row is None:
                raise NotFound("no such access request")
            return _request(row)

    def for_patient(
        self, patient_handle: str, *, status: RequestStatus | None = None
    ) -> list[AccessRequest]:
        query = select(AccessRequestRow).where(AccessRequestRow.patient_handle == patient_handle)
        if status is not None:
            query = query.where(AccessRequestRow.status == status.value)
        with self._factory() as session:
            return [
                _request(r) for r in session.scalars(query.order_by(AccessRequestRow.created_at))
            ]

    def for_provider(self, provider: str) -> list[AccessRequest]:
        query = select(AccessRequestRow).where(AccessRequestRow.provider == provider)
        with self._factory() as session:
            return [
                _request(r) for r in session.scalars(query.order_by(AccessRequestRow.created_at))
            ]

    def _move(
        self, request_id: str, *, from_: tuple[RequestStatus, ...], **values: object
    ) -> AccessRequest:
        with self._factory() as session, session.begin():
            result = session.execute(
                update(AccessRequestRow)
                .where(
                    AccessRequestRow.request_id == request_id,
                    AccessRequestRow.status.in_([s.value for s in from_]),
                )
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("the access request is no longer pending")
        return self.get(request_id)

    def claim_for_approval(self, request_id: str) -> AccessRequest:
        """Mark the request ``approving`` before its grant is relayed (Conflict if decided)."""
        return self._move(
            request_id,
            from_=(RequestStatus.PENDING, RequestStatus.APPROVING),
            status=RequestStatus.APPROVING.value,
        )

    def mark_granted(self, request_id: str, *, tx_hash: str, expires_at: datetime) -> AccessRequest:
        return self._move(
            request_id,
            from_=(RequestStatus.APPROVING,),
            status=RequestStatus.GRANTED.value,
            decided_at=self._clock(),
            tx_hash=tx_hash,
            expires_at=expires_at,
            error_code=None,
        )

    def mark_denied(self, request_id: str) -> AccessRequest:
        return self._move(
            request_id,
            from_=(RequestStatus.PENDING,),
            status=RequestStatus.DENIED.value,
            decided_at=self._clock(),
        )

    def note_failure(self, request_id: str, *, error_code: str) -> None:
        """The relayed grant failed: back to ``pending`` (retryable), with the reason."""
        with self._factory() as session, session.begin():
            session.execute(
                update(AccessRequestRow)
                .where(
                    AccessRequestRow.request_id == request_id,
                    AccessRequestRow.status == RequestStatus.APPROVING.value,
                )
                .values(status=RequestStatus.PENDING.value, error_code=error_code)
            )
