"""Providers: sign in with Ethereum, ask for access, read what the chain allows, break glass."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from web3 import Web3

from vault.access.requests import AccessRequest
from vault.access.scopes import check_purpose, check_scope, scope_id
from vault.api.deps import BEARER_SECURITY, CurrentProvider, ServicesDep, provider_read
from vault.api.schemas import ERRORS, Record, RecordWithContent, SessionToken
from vault.audit.log import AuditEvent
from vault.auth.tokens import SubjectKind
from vault.chain import codes
from vault.chain.eip712 import EmergencyAccessRequest, Signed
from vault.chain.registry import AccessBasis, ProviderStatus
from vault.errors import (
    AccessDenied,
    DecryptionFailed,
    InvalidInput,
    RecordDeleted,
    TamperDetected,
)
from vault.records.types import RecordInfo, StoredRecord
from vault.services import Services, signature_deadline

router = APIRouter(prefix="/provider", tags=["providers"], responses=ERRORS)

PURPOSE_MAX_LENGTH = 16
PURPOSE_DESCRIPTION = "HL7 PurposeOfUse code, e.g. TREAT"
Purpose = Annotated[str, Query(max_length=PURPOSE_MAX_LENGTH, description=PURPOSE_DESCRIPTION)]

#: The read route's parameters as FastAPI would document them from a signature.
READ_PARAMETERS: list[dict[str, object]] = [
    {"name": name, "in": "path", "required": True, "schema": {"type": "string", "title": title}}
    for name, title in (("handle", "Handle"), ("record_id", "Record Id"))
] + [
    {
        "name": "purpose",
        "in": "query",
        "required": True,
        "schema": {
            "type": "string",
            "maxLength": PURPOSE_MAX_LENGTH,
            "description": PURPOSE_DESCRIPTION,
            "title": "Purpose",
        },
        "description": PURPOSE_DESCRIPTION,
    }
]


def _read_parameters(request: Request) -> tuple[str, str, str]:
    """Handle, record id and purpose of a read, refused as FastAPI would refuse them
    (422 ``invalid_request`` with the field's location) when the purpose is missing or
    too long. The router matched the path, so both path parameters are there."""
    path = request.path_params
    purpose = request.query_params.get("purpose")
    if purpose is None:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("query", "purpose"), "msg": "Field required"}]
        )
    if len(purpose) > PURPOSE_MAX_LENGTH:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("query", "purpose"),
                    "msg": f"String should have at most {PURPOSE_MAX_LENGTH} characters",
                }
            ]
        )
    return path["handle"], path["record_id"], purpose


# The product's hot path, declared first: routes are tried in order, and every pattern
# tried before this one costs each provider read. It takes the bare request and reads its
# parameters itself (``_read_parameters``): FastAPI's parameter solving was 18% of this
# route's CPU at concurrency 32, more than the store read. OpenAPI gets the parameters
# written out below, so clients and the schema fuzzer see the same contract as before.
@router.get(
    "/patients/{handle}/records/{record_id}",
    response_model=RecordWithContent,
    summary="Read one record while the chain says yes",
    responses={200: {"content": {"application/octet-stream": {}}}},
    openapi_extra={**BEARER_SECURITY, "parameters": READ_PARAMETERS},
)
async def read_patient_record(request: Request) -> Response:
    session = provider_read(request)
    handle, record_id, purpose = _read_parameters(request)
    # The hot path of the product, so a coroutine: the consent check and the audit append
    # wait on the event loop (shared chain-head fetches, group-committed audit entries)
    # instead of parking a worker thread each; see ``ConsentGate.authorize_read_async``.
    provider, services = session.provider, session.services
    check_purpose(purpose)
    # Ask the chain for its head now, so the round trip overlaps the store reads below.
    head = services.gate.watch_head()
    account = await services.offload(services.accounts.get, handle)
    try:
        # Metadata, key and ciphertext in one query, opened in memory; nothing leaves
        # before the chain's answer below.
        stored = await services.offload(
            services.records.get_record, patient_id=account.record_patient_id, record_id=record_id
        )
    except (RecordDeleted, TamperDetected, DecryptionFailed):
        # Whether a record was deleted or damaged is the patient's business: an
        # unauthorized provider gets the same refusal as for any other record.
        info = await services.offload(
            services.records.get_info, patient_id=account.record_patient_id, record_id=record_id
        )
        await services.gate.authorize_read_async(
            account=account,
            provider=provider.subject,
            category=info.category,
            purpose=purpose,
            record_id=record_id,
            head=head,
        )
        raise
    await services.gate.authorize_read_async(
        account=account,
        provider=provider.subject,
        category=stored.info.category,
        purpose=purpose,
        record_id=record_id,
        head=head,
    )
    return record_response(stored)


def record_response(stored: StoredRecord) -> Response:
    """A provider's view of one decrypted version: the document's own bytes, or
    ``{"record": ..., "resource": ...}`` as :class:`RecordWithContent`."""
    if stored.info.resource_type == "Binary":
        return Response(stored.content, media_type=stored.content_type)
    # The stored body is the FHIR JSON the vault validated on write (and the AEAD tag
    # proves it unchanged): splice it in rather than parse and re-serialize it.
    return Response(
        b'{"record":' + _record_json(stored.info) + b',"resource":' + stored.content + b"}",
        media_type="application/json",
    )


@functools.lru_cache(maxsize=4096)
def _record_json(info: RecordInfo) -> bytes:
    """The record's metadata as the response model serializes it; a pure function of the
    (frozen) metadata row, so a repeat read of a version skips pydantic."""
    return Record.of(info).model_dump_json().encode()


class Nonce(BaseModel):
    nonce: str
    domain: str
    chain_id: int
    expires_at: str


class SignIn(BaseModel):
    message: str = Field(max_length=4000, description="An EIP-4361 message with the vault's nonce")
    signature: str = Field(max_length=200, pattern="^0x[0-9a-fA-F]+$")


class AccessRequestIn(BaseModel):
    patient: str = Field(max_length=64, description="The patient's handle")
    scope: str = Field(max_length=64, examples=["Observation"], description="'all' or a FHIR type")
    purpose: str = Field(max_length=16, examples=["TREAT"])
    duration_seconds: int = Field(ge=60, le=366 * 86400, examples=[86400])


class AccessRequestOut(BaseModel):
    request_id: str
    patient: str
    provider: str
    scope: str
    purpose: str
    duration_seconds: int
    status: str
    error_code: str | None = None
    tx_hash: str | None = None


class EmergencyIn(BaseModel):
    scope: str = Field(max_length=64)
    reason: str = Field(min_length=3, max_length=200)
    duration_seconds: int = Field(ge=60, le=86400)


class EmergencyTerms(BaseModel):
    typed_data: dict[str, object] = Field(
        description="EIP-712 typed data to sign with eth_signTypedData_v4"
    )
    reason_salt: str = Field(description="Salt of the reason hash; send it back with the signature")


class EmergencySigned(EmergencyIn):
    reason_salt: str = Field(pattern="^0x([0-9a-fA-F]{2}){16,32}$")
    nonce: int = Field(ge=0)
    deadline: int = Field(ge=0)
    signature: str = Field(max_length=200, pattern="^0x[0-9a-fA-F]+$")


class EmergencyOpened(BaseModel):
    tx_hash: str
    block_number: int
    expires_at: int


@router.get("/nonce", response_model=Nonce, summary="A single-use nonce for Sign-In with Ethereum")
def nonce(services: ServicesDep) -> Nonce:
    value, expires = services.signin.new_nonce()
    return Nonce(
        nonce=value,
        domain=services.signin.domain,
        chain_id=services.signin.chain_id,
        expires_at=expires.isoformat(),
    )


@router.post(
    "/sessions",
    response_model=SessionToken,
    summary="Sign in (EIP-4361); registered providers only",
)
def sign_in(body: SignIn, services: ServicesDep) -> SessionToken:
    address = services.signin.verify(message=body.message, signature=body.signature)
    if services.registry.provider_status(address) is not ProviderStatus.ACTIVE:
        raise AccessDenied("this address is not a registered, active provider")
    token, expires = services.tokens.issue(SubjectKind.PROVIDER, address)
    return SessionToken(token=token, expires_at=expires, subject=address)


def access_request_out(r: AccessRequest) -> AccessRequestOut:
    return AccessRequestOut(
        request_id=r.request_id,
        patient=r.patient_handle,
        provider=r.provider,
        scope=r.scope,
        purpose=r.purpose,
        duration_seconds=r.duration_seconds,
        status=r.status.value,
        error_code=r.error_code,
        tx_hash=r.tx_hash,
    )


@router.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessRequestOut,
    summary="Ask a patient for access",
)
def request_access(
    body: AccessRequestIn, provider: CurrentProvider, services: ServicesDep
) -> AccessRequestOut:
    services.accounts.get(body.patient)
    request = services.requests.create(
        patient_handle=body.patient,
        provider=provider.subject,
        scope=body.scope,
        purpose=body.purpose,
        duration_seconds=body.duration_seconds,
    )
    return access_request_out(request)


@router.get("/requests", response_model=list[AccessRequestOut], summary="My access requests")
def my_requests(provider: CurrentProvider, services: ServicesDep) -> list[AccessRequestOut]:
    return [access_request_out(r) for r in services.requests.for_provider(provider.subject)]


@router.get(
    "/patients/{handle}/records",
    response_model=list[Record],
    summary="List a patient's records in the scopes the chain allows me",
)
def list_patient_records(
    handle: str,
    purpose: Purpose,
    provider: CurrentProvider,
    services: ServicesDep,
    category: Annotated[str | None, Query(max_length=64)] = None,
) -> list[Record]:
    check_purpose(purpose)
    account = services.accounts.get(handle)
    if category is not None:
        check_scope(category)
        services.gate.authorize_read(
            account=account, provider=provider.subject, category=category, purpose=purpose
        )
        infos = services.records.list_records(
            patient_id=account.record_patient_id, category=category
        )
        return [Record.of(i) for i in infos]
    infos = services.records.list_records(patient_id=account.record_patient_id)
    allowed: dict[str, bool] = {}
    for info in infos:
        if info.category not in allowed:
            basis = services.gate.basis(account, provider.subject, info.category, purpose)
            allowed[info.category] = basis is not AccessBasis.NONE
    services.audit.append(
        AuditEvent(
            patient_id=handle,
            actor=provider.subject,
            action="list",
            outcome="allowed" if any(allowed.values()) else "denied",
            scope=",".join(sorted(c for c, ok in allowed.items() if ok))[:64],
            purpose=purpose,
        )
    )
    if not any(allowed.values()):
        raise AccessDenied(
            "no consent on chain for any of this patient's data", details={"purpose": purpose}
        )
    return [Record.of(i) for i in infos if allowed[i.category]]


def _emergency_message(
    services: Services,
    handle: str,
    provider: str,
    body: EmergencyIn,
    *,
    salt: bytes,
    nonce: int,
    deadline: int,
) -> EmergencyAccessRequest:
    account = services.accounts.get(handle)
    return EmergencyAccessRequest(
        patient_id=account.chain_patient_id,
        provider=Web3.to_checksum_address(provider),
        scope=scope_id(body.scope),
        reason_hash=codes.reason_hash(body.reason, salt),
        duration=body.duration_seconds,
        nonce=nonce,
        deadline=deadline,
    )


def _jsonable(value: object) -> object:
    """Typed data as JSON: bytes become 0x-hex, which EIP-712 signers accept for bytesN."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@router.post(
    "/patients/{handle}/emergency/terms",
    response_model=EmergencyTerms,
    summary="Typed data to sign for break-glass access",
)
def emergency_terms(
    handle: str, body: EmergencyIn, provider: CurrentProvider, services: ServicesDep
) -> EmergencyTerms:
    check_scope(body.scope)
    registry = services.registry
    salt = codes.new_reason_salt()
    message = _emergency_message(
        services,
        handle,
        provider.subject,
        body,
        salt=salt,
        nonce=registry.nonce_of(provider.subject),
        deadline=signature_deadline(registry),
    )
    return EmergencyTerms(
        typed_data=_jsonable(message.typed_data(registry.domain)),  # type: ignore[arg-type]
        reason_salt="0x" + salt.hex(),
    )


@router.post(
    "/patients/{handle}/emergency",
    status_code=status.HTTP_201_CREATED,
    response_model=EmergencyOpened,
    summary="Open break-glass access (needs the emergency role); the patient sees it at once",
)
def open_emergency(
    handle: str, body: EmergencySigned, provider: CurrentProvider, services: ServicesDep
) -> EmergencyOpened:
    check_scope(body.scope)
    signature = bytes.fromhex(body.signature[2:]) if len(body.signature) % 2 == 0 else b""
    if len(signature) != 65:
        raise InvalidInput("signature must be 65 bytes of hex", details={"field": "signature"})
    message = _emergency_message(
        services,
        handle,
        provider.subject,
        body,
        salt=bytes.fromhex(body.reason_salt[2:]),
        nonce=body.nonce,
        deadline=body.deadline,
    )
    outcome = services.registry.open_emergency_access(Signed(message=message, signature=signature))
    services.audit.append(
        AuditEvent(
            patient_id=handle,
            actor=provider.subject,
            action="emergency_open",
            outcome="allowed",
            scope=body.scope,
            purpose="ETREAT",
            reason=body.reason,
        )
    )
    until = services.registry.emergency_access_until(
        message.patient_id, provider.subject, message.scope
    )
    return EmergencyOpened(
        tx_hash=outcome.tx_hash, block_number=outcome.block_number, expires_at=until
    )
