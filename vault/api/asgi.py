"""The ASGI app of one ``vault serve`` worker process, built by uvicorn from an import string.

``vault serve`` opens the vault once (starts or attaches the chain, migrates, deploys),
then has uvicorn run :func:`create_served_app` in each of its worker processes
(``factory=True``). A worker reads its settings from the environment the parent set,
attaches to the chain and the database the parent prepared, and closes them on shutdown.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vault.config import get_settings
from vault.runtime import Vault, configure_logging, open_vault

#: What ``vault serve`` runs in each worker.
SERVED_APP = "vault.api.asgi:create_served_app"


def worker_app(build: Callable[[Vault], FastAPI]) -> FastAPI:
    """``build`` over a vault attached from this process's settings; closed at shutdown.

    Any factory served through :func:`vault.cli.serve.serve_app` is made this way.
    """
    configure_logging()
    vault = open_vault(get_settings(), start_chain=False)
    try:
        app = build(vault)
    except BaseException:
        vault.close()
        raise
    # What is alive once the app is built (web3 and its ABIs, FHIR and pydantic models,
    # compiled SQL) lives until exit: frozen, the collector never walks it again (the
    # ``gc.freeze`` recipe of the gc module's documentation for servers). Measured with
    # `vault bench api` on this machine's two cores, enforced read at concurrency 32: p99
    # 219 ms without, 67 ms with on SQLite x1; 260 ms without, 107 ms with on PostgreSQL x2.
    gc.collect()
    gc.freeze()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        try:
            async with inner(served):
                yield
        finally:
            vault.close()

    app.router.lifespan_context = lifespan
    return app


def create_served_app() -> FastAPI:
    """The product API with its housekeeping, in one worker of ``vault serve``."""
    from vault.api.app import create_app

    return worker_app(lambda vault: create_app(vault, housekeeping=True))
