"""Refit ``vault/biometrics/population.py`` from lfw-dev embeddings (benchmark data only).

The population statistics (mean and covariance of L2-normalised face_recognition
embeddings) centre the features so that the template's bits are unbiased. They are
fitted on lfw-dev only — never on the held-back LFW folds. Run:

    python -m vault.bench.population_fit ../shared/faces/lfw-dev
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import typer

from vault.bench.face_dataset import load_or_extract
from vault.biometrics.embedding import DetectorConfig

TEMPLATE = '''"""Population statistics of L2-normalised face_recognition embeddings (generated).

Fitted on {count} photos of lfw-dev by ``python -m vault.bench.population_fit``; not
personal data (a mean and a covariance over thousands of public photos). Used to centre
features and to scale each keyed projection so that template bits are unbiased.
"""

import base64

import numpy as np

_MEAN = (
{mean}
)
_COVARIANCE = (
{cov}
)

MEAN = np.frombuffer(base64.b64decode(_MEAN), dtype="<f8").copy()
COVARIANCE = np.frombuffer(base64.b64decode(_COVARIANCE), dtype="<f4").astype(np.float64).reshape(
    128, 128
)
'''


def render(vectors: np.ndarray) -> str:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = unit.mean(axis=0)
    cov = np.cov((unit - mean).T).astype("<f4")
    return TEMPLATE.format(
        count=len(vectors),
        mean=_wrapped(base64.b64encode(mean.astype("<f8").tobytes()).decode()),
        cov=_wrapped(base64.b64encode(cov.tobytes()).decode()),
    )


def _wrapped(text: str) -> str:
    return "\n".join(f'    "{text[i : i + 88]}"' for i in range(0, len(text), 88))


def main(lfw: str, cache_dir: str = "build/bench/faces") -> None:
    """Refit the population statistics from the lfw-dev folder ``lfw``."""
    table, _ = load_or_extract(Path(lfw), Path(cache_dir), DetectorConfig(policy="central"))
    ok = np.array([s == "ok" for s in table.status])
    out = Path(__file__).resolve().parent.parent / "biometrics" / "population.py"
    out.write_text(render(table.vectors[ok]))
    typer.echo(f"wrote {out} from {int(ok.sum())} embeddings")


if __name__ == "__main__":
    typer.run(main)
