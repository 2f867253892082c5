"""The baseline of ``vault bench api`` and its meter, mounted only with ``bench_endpoints``.

``GET /bench/bare``:

It answers a fixed payload of the requested size with no authentication, no database, no
chain and no cryptography: what the same HTTP stack (uvicorn, FastAPI, the size-limit
middleware) costs to deliver the same number of bytes. The enforced provider read minus
this is the cost of enforcement (token, consent check on chain, decrypt, audit).

``GET /bench/records/{handle}/{record_id}`` (the operator's token):

The same record the enforced provider read serves, read and decrypted from the store and
answered in the same bytes, with none of the provider read's checks: no provider token,
no chain head, no consent decision, no audit entry. The enforced read against this is
the cost of the checks alone (the issue's "the same bytes from a bare endpoint with no
checks"); against ``/bench/bare`` it is the cost of the checks *and* of reaching the data.
It asks for the operator's token because it hands out a patient's record: with bench
endpoints on, it must not be a way around consent (one constant-time compare, the cheapest
check there is).

``GET /bench/cpu``: the CPU time this process has used (all its threads), so the bench can
say what each request cost the server, not only how long the client waited: on a machine
whose cores the server shares with the load client and the chain node, that is the figure
that explains a throughput ratio.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from vault.api.deps import BEARER_SECURITY, check_admin_header
from vault.api.routes.providers import READ_PARAMETERS, record_response
from vault.services import Services

router = APIRouter(prefix="/bench", tags=["benchmark"])

MAX_BARE_BYTES = 1 << 20


@router.get("/bare", summary="A fixed payload of `size` bytes, no checks (benchmark baseline)")
async def bare(size: Annotated[int, Query(ge=0, le=MAX_BARE_BYTES)] = 512) -> Response:
    # A coroutine, as the enforced read is: a plain function would pay a worker-thread
    # hop the enforced read does not, and flatter the ratio.
    return Response(b"x" * size, media_type="application/json")


@router.get(
    "/records/{handle}/{record_id}",
    summary="A record read and decrypted with no checks but the operator's token (benchmark)",
    openapi_extra={**BEARER_SECURITY, "parameters": READ_PARAMETERS[:2]},
)
async def unchecked_record(request: Request) -> Response:
    # Shaped as the provider read (a coroutine reading its own parameters, the store read
    # inline), so the two differ only by the checks.
    check_admin_header(request)
    services: Services = request.app.state.services
    handle, record_id = request.path_params["handle"], request.path_params["record_id"]
    account = await services.offload(services.accounts.get, handle)
    stored = await services.offload(
        services.records.get_record, patient_id=account.record_patient_id, record_id=record_id
    )
    return record_response(stored)


class ProcessCpu(BaseModel):
    process_cpu_seconds: float


@router.get("/cpu", summary="CPU seconds used by this vault process so far (benchmark meter)")
async def cpu() -> ProcessCpu:
    return ProcessCpu(process_cpu_seconds=time.process_time())
