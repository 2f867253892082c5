"""The benchmark's own app: the product's API plus the baseline ``vault bench api`` compares with.

The product app (:func:`vault.api.app.create_app`) never imports this module and has no
setting that mounts these routes: at no setting does the product serve a record without a
consent decision and an audit entry. Only ``vault bench api`` serves this app, on a
throw-away data directory of its own.

``GET /bench/records/{handle}/{record_id}`` (the operator's token) is the same record the
enforced provider read serves, read and decrypted from the store and answered in the same
bytes, with none of the provider read's checks: no provider token, no chain head, no
consent decision, no audit entry. It is shaped as the provider read (the same dependencies,
the same store calls in one worker-thread hop) so that the two differ by the checks alone.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, FastAPI, Response

from vault.api.app import create_app
from vault.api.deps import AdminDep, ServicesDep
from vault.api.routes.providers import record_response
from vault.records.types import StoredRecord
from vault.runtime import Vault
from vault.services import Services

router = APIRouter(prefix="/bench", tags=["benchmark"])


@router.get(
    "/records/{handle}/{record_id}",
    summary="A record read and decrypted with no checks but the operator's token (benchmark)",
)
async def unchecked_record(
    handle: str, record_id: str, _admin: AdminDep, services: ServicesDep
) -> Response:
    # The provider read's shape without its checks: a coroutine, the account and record
    # lookups in one worker-thread hop, the same response.
    stored = await asyncio.to_thread(_stored_record, services, handle, record_id)
    return record_response(stored)


def _stored_record(services: Services, handle: str, record_id: str) -> StoredRecord:
    account = services.accounts.get(handle)
    return services.records.get_record(patient_id=account.record_patient_id, record_id=record_id)


def create_bench_app(
    vault: Vault, services: Services | None = None, *, housekeeping: bool = False
) -> FastAPI:
    """The product app over ``vault`` with the benchmark's baseline route added."""
    app = create_app(vault, services, housekeeping=housekeeping)
    app.include_router(router)
    return app


def create_served_bench_app() -> FastAPI:
    """:func:`create_bench_app` with its housekeeping, in one worker of the bench's server
    (:mod:`vault.bench.server`), attached as ``vault serve``'s workers are."""
    from vault.api.asgi import worker_app

    return worker_app(lambda vault: create_bench_app(vault, housekeeping=True))
