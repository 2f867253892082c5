"""Patients: enroll, verify (session), step-up actions on consent, history, re-enroll, delete.

Sensitive actions take a fresh photo in the same request (multipart ``photo``): they need
the consent key, which exists only in memory after a face match.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from pydantic import BaseModel, Field
from web3 import Web3

from vault.access.requests import RequestStatus
from vault.api.deps import CurrentPatient, ServicesDep
from vault.api.routes.providers import AccessRequestOut, access_request_out
from vault.api.schemas import ERRORS, SessionToken
from vault.audit.anchoring import chain_anchor_of
from vault.audit.proofs import proofs_for
from vault.auth.tokens import SubjectKind
from vault.errors import InvalidInput

router = APIRouter(tags=["patients"], responses=ERRORS)

Photo = Annotated[UploadFile, File(description="A JPEG, PNG or WebP photo of the patient's face")]
#: The optional second factor: required with every photo by a patient who enrolled with it.
Pin = Annotated[
    str | None,
    Form(
        min_length=4,
        max_length=128,
        description="The patient's PIN, if they enrolled with one (optional second factor)",
    ),
]
MAX_ENROLL_PHOTOS = 5
#: The access log comes a page at a time (bounded memory and response, however long the log).
DEFAULT_LOG_PAGE = 100
MAX_LOG_PAGE = 1000


class Enrolled(BaseModel):
    handle: str = Field(description="The patient's handle: keep it, it is how you sign in")
    address: str = Field(description="The consent key's address (controller on chain)")
    tx_hash: str


class Reenrolled(BaseModel):
    handle: str
    address: str
    tx_hash: str


class ConsentOut(BaseModel):
    provider: str
    scope: str
    purpose: str
    granted_at: int
    expires_at: int


class RevokeIn(BaseModel):
    provider: str = Field(pattern="^0x[0-9a-fA-F]{40}$")
    scope: str = Field(max_length=64)
    purpose: str = Field(max_length=16)


class Revoked(BaseModel):
    tx_hash: str
    block_number: int


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    outcome: str
    scope: str
    purpose: str
    record_id: str
    reason: str
    prev_hash: str
    entry_hash: str


class InclusionProofOut(BaseModel):
    first_seq: int
    last_seq: int
    index: int
    size: int
    root: str
    path: list[str]


class HistoryItem(BaseModel):
    entry: AuditEntryOut
    proof: InclusionProofOut | None = Field(description="Null until the entry is anchored")


class ChainEventOut(BaseModel):
    kind: str
    block_number: int
    block_timestamp: int
    tx_hash: str
    provider: str | None = None
    expires_at: int | None = None


class AccessHistory(BaseModel):
    entries: list[HistoryItem] = Field(description="One page of the log, oldest first")
    next_after: int | None = Field(
        default=None,
        description="Pass as ``after`` for the next page; null on the last page",
    )
    chain_events: list[ChainEventOut] = Field(
        description="Grants, revokes and break-glass on chain"
    )
    registry: str
    chain_id: int


def _read_photo(upload: UploadFile) -> bytes:
    # Routes here are plain ``def``: FastAPI runs them in its worker threads, so a face
    # match (a tenth of a second or more of CPU) never blocks the event loop.
    return upload.file.read()


@router.post(
    "/patients",
    status_code=status.HTTP_201_CREATED,
    response_model=Enrolled,
    summary="Enroll with 1 to 5 face photos (3 recommended)",
)
def enroll(
    services: ServicesDep, photos: Annotated[list[UploadFile], File()], pin: Pin = None
) -> Enrolled:
    if not 1 <= len(photos) <= MAX_ENROLL_PHOTOS:
        raise InvalidInput("enroll with 1 to 5 photos", details={"photos": len(photos)})
    images = [_read_photo(p) for p in photos]
    enrolled = services.enrollment.enroll(images, pin=pin)
    return Enrolled(handle=enrolled.handle, address=enrolled.address, tx_hash=enrolled.tx_hash)


@router.post(
    "/patients/{handle}/sessions",
    response_model=SessionToken,
    summary="Verify a face photo against the handle; get a short-lived session token",
)
def verify(handle: str, services: ServicesDep, photo: Photo, pin: Pin = None) -> SessionToken:
    services.enrollment.verify(handle, _read_photo(photo), pin=pin)
    token, expires = services.tokens.issue(SubjectKind.PATIENT, handle)
    return SessionToken(token=token, expires_at=expires, subject=handle)


@router.get(
    "/patient/requests", response_model=list[AccessRequestOut], summary="Providers' requests to me"
)
def my_requests(
    patient: CurrentPatient, services: ServicesDep, pending_only: bool = False
) -> list[AccessRequestOut]:
    requests = services.requests.for_patient(
        patient.handle, status=RequestStatus.PENDING if pending_only else None
    )
    return [access_request_out(r) for r in requests]


@router.post(
    "/patient/requests/{request_id}/approve",
    response_model=AccessRequestOut,
    summary="Approve with a fresh photo: sign the grant with my face-derived key, relay it",
)
def approve(
    request_id: str, patient: CurrentPatient, services: ServicesDep, photo: Photo, pin: Pin = None
) -> AccessRequestOut:
    key = services.enrollment.verify(patient.handle, _read_photo(photo), pin=pin)
    granted = services.consents.approve(account=patient, key=key, request_id=request_id)
    return access_request_out(granted)


@router.post(
    "/patient/requests/{request_id}/deny",
    response_model=AccessRequestOut,
    summary="Deny with a fresh photo",
)
def deny(
    request_id: str, patient: CurrentPatient, services: ServicesDep, photo: Photo, pin: Pin = None
) -> AccessRequestOut:
    services.enrollment.verify(patient.handle, _read_photo(photo), pin=pin)
    return access_request_out(services.consents.deny(account=patient, request_id=request_id))


@router.get(
    "/patient/consents",
    response_model=list[ConsentOut],
    summary="Consents standing now, as the chain has them",
)
def my_consents(patient: CurrentPatient, services: ServicesDep) -> list[ConsentOut]:
    return [
        ConsentOut(
            provider=c.provider,
            scope=c.scope,
            purpose=c.purpose,
            granted_at=c.granted_at,
            expires_at=c.expires_at,
        )
        for c in services.consents.standing(patient)
    ]


@router.post(
    "/patient/consents/revoke",
    response_model=Revoked,
    summary="Revoke a consent with a fresh photo",
)
def revoke(
    patient: CurrentPatient,
    services: ServicesDep,
    photo: Photo,
    provider: Annotated[str, Form(pattern="^0x[0-9a-fA-F]{40}$")],
    scope: Annotated[str, Form(max_length=64)],
    purpose: Annotated[str, Form(max_length=16)],
    pin: Pin = None,
) -> Revoked:
    key = services.enrollment.verify(patient.handle, _read_photo(photo), pin=pin)
    outcome = services.consents.revoke(
        account=patient,
        key=key,
        provider=Web3.to_checksum_address(provider),
        scope=scope,
        purpose=purpose,
    )
    return Revoked(tx_hash=outcome.tx_hash, block_number=outcome.block_number)


@router.get(
    "/patient/access-log",
    response_model=AccessHistory,
    summary="Who opened what, when and why, with proofs",
)
def access_log(
    patient: CurrentPatient,
    services: ServicesDep,
    after: Annotated[
        int,
        Query(ge=0, le=2**63 - 2, description="Cursor: the ``seq`` of the last entry already seen"),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE, description="Entries per page")] = (
        DEFAULT_LOG_PAGE
    ),
) -> AccessHistory:
    # One more than asked: whether a next page exists, without counting the log.
    entries = services.audit.entries(patient_id=patient.handle, first=after + 1, limit=limit + 1)
    next_after = entries[limit - 1].seq if len(entries) > limit else None
    entries = entries[:limit]
    proofs = proofs_for(services.audit, entries, anchor_of=chain_anchor_of(services.registry))
    items = []
    for entry, proof in zip(entries, proofs, strict=True):
        e = entry.event
        out = AuditEntryOut(
            seq=entry.seq,
            at=entry.at.isoformat(),
            actor=e.actor,
            action=e.action,
            outcome=e.outcome,
            scope=e.scope,
            purpose=e.purpose,
            record_id=e.record_id,
            reason=e.reason,
            prev_hash="0x" + entry.prev_hash.hex(),
            entry_hash="0x" + entry.entry_hash.hex(),
        )
        proof_out = (
            InclusionProofOut(
                first_seq=proof.anchor.first_seq,
                last_seq=proof.anchor.last_seq,
                index=proof.index,
                size=proof.size,
                root="0x" + proof.anchor.root.hex(),
                path=["0x" + p.hex() for p in proof.path],
            )
            if proof is not None
            else None
        )
        items.append(HistoryItem(entry=out, proof=proof_out))
    events = [
        ChainEventOut(
            kind=ev.kind,
            block_number=ev.block_number,
            block_timestamp=ev.block_timestamp,
            tx_hash=ev.tx_hash,
            provider=ev.provider,
            expires_at=ev.expires_at,
        )
        for ev in services.registry.history(patient_id=patient.chain_patient_id)
    ]
    return AccessHistory(
        entries=items,
        next_after=next_after,
        chain_events=events,
        registry=services.registry.address,
        chain_id=services.registry.domain.chain_id,
    )


@router.post(
    "/patient/reenroll",
    response_model=Reenrolled,
    summary="Renew my template: a fresh photo of the current face plus 1-5 new photos",
)
def reenroll(
    patient: CurrentPatient,
    services: ServicesDep,
    photo: Photo,
    photos: Annotated[list[UploadFile], File(description="1 to 5 new enrollment photos")],
    pin: Pin = None,
    new_pin: Annotated[
        str | None,
        Form(min_length=4, max_length=128, description="The new template's PIN (omit: none)"),
    ] = None,
) -> Reenrolled:
    if not 1 <= len(photos) <= MAX_ENROLL_PHOTOS:
        raise InvalidInput("re-enroll with 1 to 5 photos", details={"photos": len(photos)})
    current = services.enrollment.verify(patient.handle, _read_photo(photo), pin=pin)
    images = [_read_photo(p) for p in photos]
    renewed = services.enrollment.reenroll(patient, current, images, pin=new_pin)
    return Reenrolled(handle=patient.handle, address=renewed.address, tx_hash=renewed.tx_hash)


@router.post(
    "/patient/delete",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete my account with a fresh photo: revoke every consent, shred every record",
    description="A POST (not DELETE) because it carries the step-up photo in its body.",
)
def delete_account(
    patient: CurrentPatient, services: ServicesDep, photo: Photo, pin: Pin = None
) -> Response:
    key = services.enrollment.verify(patient.handle, _read_photo(photo), pin=pin)
    services.enrollment.delete(patient, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
