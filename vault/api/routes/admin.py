"""The operator's API (bearer ``VAULT_ADMIN_TOKEN``): providers, audit anchoring, keys."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from web3 import Web3

from vault.api.deps import AdminDep, ServicesDep
from vault.api.schemas import ERRORS
from vault.audit.anchoring import anchor_audit_log
from vault.chain.registry import ProviderStatus
from vault.errors import InvalidInput

router = APIRouter(prefix="/admin", tags=["operator"], responses=ERRORS)


class ProviderIn(BaseModel):
    address: str = Field(pattern="^0x[0-9a-fA-F]{40}$", examples=["0x" + "ab" * 20])
    emergency: bool = Field(default=False, description="Also grant the break-glass role")


class ProviderOut(BaseModel):
    address: str
    status: str
    emergency: bool


class AnchorOut(BaseModel):
    anchored: bool
    first_seq: int | None = None
    last_seq: int | None = None
    root: str | None = None
    tx_hash: str | None = None


class RewrapOut(BaseModel):
    rewrapped: int


def _address(value: str) -> str:
    try:
        return Web3.to_checksum_address(value)
    except ValueError as exc:
        raise InvalidInput("not an Ethereum address", details={"field": "address"}) from exc


def _provider(services: ServicesDep, address: str) -> ProviderOut:
    registry = services.registry
    return ProviderOut(
        address=address,
        status=registry.provider_status(address).name.lower(),
        emergency=registry.has_role("EMERGENCY_ROLE", address),
    )


@router.post(
    "/providers",
    status_code=status.HTTP_201_CREATED,
    response_model=ProviderOut,
    summary="Register a provider on chain",
)
def register_provider(body: ProviderIn, _admin: AdminDep, services: ServicesDep) -> ProviderOut:
    address = _address(body.address)
    if services.registry.provider_status(address) is not ProviderStatus.ACTIVE:
        services.registry.register_provider(address)
    if body.emergency and not services.registry.has_role("EMERGENCY_ROLE", address):
        services.registry.grant_role("EMERGENCY_ROLE", address)
    return _provider(services, address)


@router.get(
    "/providers/{address}", response_model=ProviderOut, summary="A provider's status on chain"
)
def provider_status(address: str, _admin: AdminDep, services: ServicesDep) -> ProviderOut:
    return _provider(services, _address(address))


@router.delete(
    "/providers/{address}", response_model=ProviderOut, summary="Deactivate a provider on chain"
)
def deactivate_provider(address: str, _admin: AdminDep, services: ServicesDep) -> ProviderOut:
    checksum = _address(address)
    services.registry.deactivate_provider(checksum)
    return _provider(services, checksum)


@router.post(
    "/audit/anchor",
    response_model=AnchorOut,
    summary="Anchor the access log's new entries on chain now",
)
def anchor_now(_admin: AdminDep, services: ServicesDep) -> AnchorOut:
    anchor = anchor_audit_log(services.audit, services.registry)
    if anchor is None:
        return AnchorOut(anchored=False)
    return AnchorOut(
        anchored=True,
        first_seq=anchor.first_seq,
        last_seq=anchor.last_seq,
        root="0x" + anchor.root.hex(),
        tx_hash=anchor.tx_hash,
    )


@router.post(
    "/keys/rewrap",
    response_model=RewrapOut,
    summary="Re-wrap patient keys under the newest master key",
)
def rewrap_keys(_admin: AdminDep, services: ServicesDep) -> RewrapOut:
    return RewrapOut(rewrapped=services.records.rewrap_patient_keys())
