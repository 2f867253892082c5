"""``vault serve``: open the vault (chain, contract, database) and serve the API."""

from __future__ import annotations

import gc
import logging
import signal
from types import FrameType

import typer
import uvicorn

from vault.config import get_settings


def _settle_heap() -> None:
    """Exempt the start-up heap from garbage collection for the life of the server.

    What is alive once the app is built (web3 and its ABIs, FHIR and pydantic models,
    compiled SQL) lives until exit, yet every full collection walked all of it: pauses of
    about 160 ms every couple of thousand requests here, the whole of the API's p99 at
    concurrency 32. Frozen, a full collection walks only what requests allocated (about
    8 ms). This is the ``gc.freeze`` recipe from the ``gc`` documentation for servers.
    """
    gc.collect()
    gc.freeze()


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def serve(
    host: str = typer.Option(None, help="Interface to bind (default: settings, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to bind (default: settings, 8400)."),
) -> None:
    """Start or attach to the chain, deploy the registry if needed, migrate, serve the API."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = get_settings(**overrides)
    # Imported here: the API stack (siwe's grammar, FHIR models) costs a second or two to
    # import, which every other `vault` command would pay for nothing.
    from vault.api.app import create_app
    from vault.runtime import open_vault

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic", "web3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so
    # the `finally` below still runs and stops the chain this process started.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    vault = open_vault(settings)
    try:
        status = vault.chain.status()
        for note in vault.notes:
            typer.echo(note)
        typer.echo(
            f"chain {status.chain_id} at block {status.block_number}, "
            f"ConsentRegistry {status.contract_address}"
        )
        typer.echo(f"database {settings.resolved_database_url}")
        typer.echo(f"serving on http://{settings.host}:{settings.port}")
        app = create_app(vault, housekeeping=True)
        _settle_heap()
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
        )
    finally:
        vault.close()
