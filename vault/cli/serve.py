"""``vault serve``: open the vault (chain, contract, database) and serve the API."""

from __future__ import annotations

import gc
import logging
import signal
from types import FrameType

import typer
import uvicorn

from vault.config import get_settings

#: Net allocations of tracked objects between two young collections (CPython's default:
#: 700). See :func:`_settle_heap`.
YOUNG_COLLECTION_THRESHOLD = 10_000


def _settle_heap() -> None:
    """Exempt the start-up heap from garbage collection, and collect young objects rarely.

    What is alive once the app is built (web3 and its ABIs, FHIR and pydantic models,
    compiled SQL) lives until exit, yet every full collection walked all of it: pauses of
    about 160 ms every couple of thousand requests here, the whole of the API's p99 at
    concurrency 32. Frozen, it is never walked again. This is the ``gc.freeze`` recipe
    from the ``gc`` documentation for servers.

    A request's objects die by reference counting when it ends, but at the default
    threshold a young collection ran every 700 net allocations, always with the objects of
    the 32 reads in flight alive: they were promoted, often enough to trigger a full
    collection every 1,500-2,000 reads, each 7-19 ms with every read in flight waiting
    (the enforced read at concurrency 32, four runs of 9 s: 12-20 full collections in each
    10 s window, p99 18.8-21.4 ms). At 10,000 net allocations a run had 5 young
    collections of about 2 ms and no full one (p99 13.4-18.2 ms in four runs), and the
    collector's share of the CPU fell from 2-5% to about 0.1%. Memory held by cyclic
    garbage stays bounded by the threshold.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


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
