"""Fit the biometric gate's data files on lfw-dev: population statistics and thresholds.

    python -m vault.bench.faces_fit ../shared/faces/lfw-dev --out build/faces-fit

writes ``population.npz`` (mean and covariance of the L2-normalised embeddings of the
given folds) and ``operating_point.json`` (per enrollment size, the loosest match-score
threshold whose upper 80 % Clopper-Pearson bound of the FMR on those folds is at or below
the target, measured by protocol S with that population) into ``--out``. It never writes
into the package: shipping a fit is a reviewed copy into ``vault/biometrics/data/``, and
new population statistics invalidate every template enrolled under the old ones.

Fit on lfw-dev only; the held-back LFW folds are for measuring, never for fitting.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vault.bench.face_dataset import load_or_extract, read_folds
from vault.bench.face_protocol import score_sizes, size_tasks
from vault.bench.face_stats import margin_threshold
from vault.biometrics.calibration import OperatingPoint
from vault.biometrics.embedding import DetectorConfig
from vault.biometrics.population import Population
from vault.biometrics.template import TemplateParams

PACKAGE = Path(__file__).resolve().parents[1]
#: Embeddings of public photos, a benchmark artefact: outside the repository.
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "vault-bench-faces"
TARGET_FMR = 1e-3
CONFIDENCE = 0.8


def fit(
    lfw: Path,
    *,
    cache_dir: Path,
    folds: tuple[int, ...],
    impostors: int,
    workers: int,
    seed: int,
    target_fmr: float = TARGET_FMR,
    confidence: float = CONFIDENCE,
) -> tuple[Population, OperatingPoint]:
    table, _ = load_or_extract(lfw, cache_dir, DetectorConfig(policy="central"), workers=workers)
    person_fold = {p: f for p, f in read_folds(lfw).items() if f in folds}
    rows = [table.index[k] for k in table.keys if table.ok(k) and k.split("/", 1)[0] in person_fold]
    population = Population.fit(table.vectors[rows], folds=folds, source=lfw.name)
    tasks, _ = size_tasks(
        table, person_fold, impostors=impostors, rng=np.random.default_rng(seed), attack=False
    )
    scores = score_sizes(
        tasks,
        np.nan_to_num(table.vectors),
        params=TemplateParams(),
        pepper=secrets.token_bytes(32),
        population=population,
        workers=workers,
    )
    point = OperatingPoint(
        thresholds={
            size: margin_threshold(s.impostor, target_fmr, confidence) for size, s in scores.items()
        },
        target_fmr=target_fmr,
        confidence=confidence,
        folds=folds,
        source=lfw.name,
        impostor_attempts={size: len(s.impostor) for size, s in scores.items()},
        genuine_attempts={size: len(s.genuine) for size, s in scores.items()},
    )
    return population, point


def main(
    lfw: Annotated[Path, typer.Argument(help="lfw-dev folder (pairs.txt and images/).")],
    out: Annotated[Path, typer.Option(help="Folder the two data files are written to.")],
    cache: Annotated[Path, typer.Option(help="Embedding cache folder.")] = DEFAULT_CACHE,
    folds: Annotated[str, typer.Option(help="Folds of pairs.txt to fit on.")] = "1,2,3,4,5",
    impostors: Annotated[int, typer.Option(min=50, help="Impostors per template.")] = 150,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Fit population statistics and per-size thresholds on ``lfw``; write them to ``out``."""
    target = out.resolve()
    if target == PACKAGE or PACKAGE in target.parents:
        raise typer.BadParameter("--out must not be inside the vault package", param_hint="--out")
    chosen = tuple(sorted({int(f) for f in folds.split(",")}))
    population, point = fit(
        lfw, cache_dir=cache, folds=chosen, impostors=impostors, workers=workers, seed=seed
    )
    population.save(target / "population.npz")
    point.save(target / "operating_point.json")
    typer.echo(f"population: {population.photos} photos of folds {chosen}")
    for size, threshold in point.thresholds.items():
        typer.echo(
            f"{size} photos: threshold {threshold:.4f} "
            f"({point.impostor_attempts[size]} impostor, {point.genuine_attempts[size]} "
            "genuine attempts)"
        )
    typer.echo(f"wrote {target / 'population.npz'} and {target / 'operating_point.json'}")


if __name__ == "__main__":
    typer.run(main)
