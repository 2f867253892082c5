"""``vault bench ...``: benchmark commands. Each delegates to ``vault.bench.<area>``."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Measure accuracy and speed; print figures.", no_args_is_help=True)


@bench_app.command("store")
def store(
    fhir_dir: str | None = typer.Argument(
        None, help="Folder of FHIR transaction Bundles to import (e.g. ../shared/fhir/dev)."
    ),
    records: str = typer.Option(
        "10000,1000000", help="Store sizes (records) at which latency is measured."
    ),
    samples: int = typer.Option(1000, help="Store and read operations measured per size."),
    work_dir: str | None = typer.Option(
        None, help="Where the benchmark databases go (default: a temporary directory)."
    ),
) -> None:
    """Envelope vs bare AES-GCM throughput, store/read latency as the store grows,
    bundle import speed (resources/s)."""
    from vault.bench.store import run_from_cli

    run_from_cli(typer.echo, fhir_dir=fhir_dir, records=records, samples=samples, work_dir=work_dir)
