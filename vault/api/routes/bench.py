"""``GET /bench/bare``: the baseline of ``vault bench api``, mounted only with ``bench_endpoints``.

It answers a fixed payload of the requested size with no authentication, no database, no
chain and no cryptography: what the same HTTP stack (uvicorn, FastAPI, the size-limit
middleware) costs to deliver the same number of bytes. The enforced provider read minus
this is the cost of enforcement (token, consent check on chain, decrypt, audit).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

router = APIRouter(prefix="/bench", tags=["benchmark"])

MAX_BARE_BYTES = 1 << 20


@router.get("/bare", summary="A fixed payload of `size` bytes, no checks (benchmark baseline)")
async def bare(size: Annotated[int, Query(ge=0, le=MAX_BARE_BYTES)] = 512) -> Response:
    # A coroutine, as the enforced read is: a plain function would pay a worker-thread
    # hop the enforced read does not, and flatter the ratio.
    return Response(b"x" * size, media_type="application/json")
