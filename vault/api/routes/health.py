"""``GET /healthz``: is the vault able to serve, and on which chain and contract."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vault.api.deps import VaultDep
from vault.errors import VaultError
from vault.store.database import ping

router = APIRouter(tags=["operations"])


class ComponentHealth(BaseModel):
    ok: bool
    code: str | None = None
    message: str | None = None


class ChainHealth(ComponentHealth):
    chain_id: int | None = None
    block_number: int | None = None
    contract_address: str | None = None


class Health(BaseModel):
    status: str
    database: ComponentHealth
    chain: ChainHealth


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "database or chain is down"}},
    summary="Database and chain status",
)
def healthz(vault: VaultDep) -> JSONResponse:
    try:
        ping(vault.engine)
        database = ComponentHealth(ok=True)
    except VaultError as exc:
        database = ComponentHealth(ok=False, code=exc.code, message=exc.message)
    try:
        status = vault.chain.status()
        chain = ChainHealth(
            ok=True,
            chain_id=status.chain_id,
            block_number=status.block_number,
            contract_address=status.contract_address,
        )
    except VaultError as exc:
        chain = ChainHealth(
            ok=False,
            code=exc.code,
            message=exc.message,
            chain_id=vault.chain.chain_id,
            contract_address=vault.chain.deployment.address,
        )
    healthy = database.ok and chain.ok
    body = Health(status="ok" if healthy else "unavailable", database=database, chain=chain)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
