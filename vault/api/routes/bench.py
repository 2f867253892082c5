"""The baseline of ``vault bench api`` and its meter, mounted only with ``bench_endpoints``.

``GET /bench/bare``:

It answers a fixed payload of the requested size with no authentication, no database, no
chain and no cryptography: what the same HTTP stack (uvicorn, FastAPI, the size-limit
middleware) costs to deliver the same number of bytes. The enforced provider read minus
this is the cost of enforcement (token, consent check on chain, decrypt, audit).

``GET /bench/cpu``: the CPU time this process has used (all its threads), so the bench can
say what each request cost the server, not only how long the client waited: on a machine
whose cores the server shares with the load client and the chain node, that is the figure
that explains a throughput ratio.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

router = APIRouter(prefix="/bench", tags=["benchmark"])

MAX_BARE_BYTES = 1 << 20


@router.get("/bare", summary="A fixed payload of `size` bytes, no checks (benchmark baseline)")
async def bare(size: Annotated[int, Query(ge=0, le=MAX_BARE_BYTES)] = 512) -> Response:
    # A coroutine, as the enforced read is: a plain function would pay a worker-thread
    # hop the enforced read does not, and flatter the ratio.
    return Response(b"x" * size, media_type="application/json")


class ProcessCpu(BaseModel):
    process_cpu_seconds: float


@router.get("/cpu", summary="CPU seconds used by this vault process so far (benchmark meter)")
async def cpu() -> ProcessCpu:
    return ProcessCpu(process_cpu_seconds=time.process_time())
