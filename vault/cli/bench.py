"""``vault bench ...``: benchmark commands. Each delegates to ``vault.bench.<area>``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

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


@bench_app.command("faces")
def faces(
    lfw: str = typer.Option(..., help="lfw-dev folder (never copied into the repository)."),
    out: str = typer.Option(
        "build/bench/faces", help="Embedding cache and DET curve folder (e.g. under /tmp)."
    ),
    construction: str = typer.Option("shipped", help="shipped, simhash-hard, sin-soft..."),
    impostors: int = typer.Option(150, min=50, help="Impostor photos tried per template."),
    linkage_people: int = typer.Option(200, min=20, help="People in the unlinkability run."),
    workers: int = typer.Option(2, min=1),
    no_cache: bool = typer.Option(False, help="Re-extract embeddings."),
    params: str = typer.Option("", help="Override: blocks:k:freq:oversample:quantizer:soft"),
) -> None:
    """The shipped operating point per enrollment size (1-5 photos) on LFW folds:
    FMR/FNMR with bounds, cross-validated, offline attack, unlinkability."""
    from rich.progress import Progress

    from vault.bench.faces import CONSTRUCTIONS, BenchConfig, render, run
    from vault.biometrics.template import TemplateParams

    if construction not in CONSTRUCTIONS:
        raise typer.BadParameter(f"choose one of {', '.join(CONSTRUCTIONS)}")
    if not (Path(lfw) / "pairs.txt").is_file():
        raise typer.BadParameter("--lfw must be a folder with pairs.txt and images/")
    config = BenchConfig(
        Path(lfw),
        Path(out),
        construction,
        impostors=impostors,
        workers=workers,
        use_cache=not no_cache,
        linkage_people=linkage_people,
    )
    if params:
        config.params = TemplateParams.decode(params)
        config.construction = params.replace(":", "_")
    with Progress() as progress:

        def factory(label: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)

        report = run(config, progress_factory=factory)
    for line in render(report):
        typer.echo(line)


@bench_app.command("api")
def api(
    database_url: str = typer.Option(
        None,
        help="A PostgreSQL server URL (postgresql+psycopg://...); each PostgreSQL shape gets a "
        "fresh database created there and dropped after. Unset: SQLite only.",
    ),
    workers: str = typer.Option("1,2", help="API processes of the PostgreSQL shapes."),
    baseline_ref: str = typer.Option(
        None,
        help="Also serve this git commit's code (SQLite, one process) and print this code's "
        "throughput against it, e.g. 2b5e38c.",
    ),
    requests: int = typer.Option(2000, min=10, help="Most requests per endpoint and concurrency."),
    seconds: float = typer.Option(10.0, min=1.0, help="Most seconds per endpoint and concurrency."),
) -> None:
    """Enforced provider read vs the same bytes unchecked at concurrency 1, 8, 32, on SQLite
    with one process and PostgreSQL with one and two; the revoke-to-deny result of each."""
    from vault.bench.api import default_shapes, run
    from vault.config import get_settings
    from vault.demo.story import SampleData
    from vault.errors import InvalidInput

    try:
        counts = [int(n) for n in workers.split(",") if n.strip()]
    except ValueError:
        counts = []
    if not counts or any(n < 1 or n > 16 for n in counts):
        raise InvalidInput("--workers takes a comma-separated list of 1 to 16, e.g. 1,2")
    settings = get_settings()
    run(
        project_root=settings.project_root,
        sample=SampleData.under(settings.project_root / "sample_data"),
        shapes=default_shapes(database_url, counts),
        database_url=database_url,
        baseline_ref=baseline_ref,
        requests=requests,
        seconds=seconds,
        echo=typer.echo,
    )


@bench_app.command("load")
def load(
    url: Annotated[
        list[str] | None,
        typer.Option(
            help="A running vault; repeat for several processes (requests go round-robin)."
        ),
    ] = None,
    seconds: float = typer.Option(60.0, min=1.0, max=900.0, help="Length of the load phase."),
    patients: int = typer.Option(4, min=1, max=50, help="Patients (each enrolls once)."),
    providers: int = typer.Option(4, min=1, max=50, help="Providers (each signs in once)."),
    workers: int = typer.Option(6, min=1, max=64, help="Upload/read worker threads."),
) -> None:
    """Many patients and providers at once, then check nothing was lost or wrongly allowed."""
    from vault.bench.load import run
    from vault.config import get_settings
    from vault.demo.client import admin_token
    from vault.demo.story import SampleData

    settings = get_settings()
    run(
        urls=url or [f"http://{settings.host}:{settings.port}"],
        admin_token=admin_token(settings),
        sample=SampleData.under(settings.project_root / "sample_data"),
        seconds=seconds,
        patients=patients,
        providers=providers,
        workers=workers,
        echo=typer.echo,
    )
