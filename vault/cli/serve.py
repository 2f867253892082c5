"""``vault serve``: open the vault (chain, contract, database) and serve the API."""

from __future__ import annotations

import os
import signal
from types import FrameType

import typer
import uvicorn

from vault.config import Settings, get_settings


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def serve_app(settings: Settings, *, factory: str, workers: int = 1) -> None:
    """Prepare the vault once, then serve the app ``factory`` builds from ``workers`` processes.

    ``factory`` is an import string (``"module:function"``) of a function without
    arguments that returns the ASGI app, built with :func:`vault.api.asgi.worker_app`.
    This process starts (or attaches to) the embedded chain, migrates the database and
    deploys the registry if it was never deployed; uvicorn then runs the factory in each
    worker (in this process when ``workers`` is 1), and each attaches to what was prepared.
    On exit this process stops the chain if it started it.
    """
    # Imported here: the API stack (siwe's grammar, FHIR models) costs a second or two to
    # import, which every other `vault` command would pay for nothing.
    from vault.runtime import configure_logging, open_vault, settings_environment

    configure_logging()
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
        typer.echo(f"serving on http://{settings.host}:{settings.port} ({workers} processes)")
        # The workers open their own connections; this process keeps only the chain.
        vault.engine.dispose()
        # Workers are fresh interpreters (uvicorn spawns them) that build their Settings
        # from the environment: hand them the settings this command was given.
        os.environ.update(settings_environment(settings))
        uvicorn.run(
            factory,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="warning",
        )
    finally:
        vault.close()


def serve(
    host: str = typer.Option(None, help="Interface to bind (default: settings, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to bind (default: settings, 8400)."),
    workers: int = typer.Option(
        1, min=1, help="API processes sharing the database and the chain (uvicorn workers)."
    ),
) -> None:
    """Start or attach to the chain, deploy the registry if needed, migrate, serve the API."""
    from vault.api.asgi import SERVED_APP

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    serve_app(get_settings(**overrides), factory=SERVED_APP, workers=workers)
