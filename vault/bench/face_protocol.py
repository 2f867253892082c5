"""Protocol S: templates of 1 to 5 photos, each measured inside its own LFW fold.

For every enrollment size s and every person with more than s usable photos: enroll the
first s, try each later photo (genuine attempts) and a random sample of the photos of
*other people of the same fold* (impostor attempts). Keeping every attempt inside one
fold is what lets a threshold be fitted on four folds and measured on the fifth: no
photo, person or score of the measured fold takes part in the fit.

The same worker also runs the offline attack of an operator-side thief who holds the
database and the pepper (Keller et al. 2020): every impostor photo is a face tried
against the template (its acceptance rate is the code's own FMR), plus the population's
mean face, the mean and the per-bit majority of the fold's other faces, and the mean of
the ten faces the decoder rates nearest to the template.

Every protected decision is recomputed with a fresh pepper and fresh templates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from vault.bench.face_dataset import EmbeddingTable
from vault.biometrics.calibration import MAX_PHOTOS
from vault.biometrics.codes import rm_decode_soft
from vault.biometrics.population import Population, shipped
from vault.biometrics.template import OpenedTemplate, TemplateParams, enroll, open_template

FloatArray = NDArray[np.float64]
SIZES = tuple(range(1, MAX_PHOTOS + 1))
ATTACKS = ("population mean face", "fold mean face", "majority bits", "nearest-10 mean face")
NEAREST = 10


@dataclass(slots=True)
class SizeTask:
    """One template (``size`` photos of ``person``) and the photos tried against it."""

    size: int
    fold: int
    person: str
    enroll: list[int]
    genuine: list[int]
    impostor: list[int]
    attack: bool = True  # also try the crafted faces (the fit does not need them)


@dataclass(slots=True)
class SizeTaskResult:
    genuine_score: list[float]
    impostor_score: list[float]
    enroll_seconds: float
    decision_seconds: float
    attacks_opened: list[bool] = field(default_factory=list)


@dataclass(slots=True)
class SizeScores:
    """Every attempt of one enrollment size, with the fold it belongs to."""

    size: int
    templates: int
    genuine: FloatArray  # protected score, -inf when κ did not open
    genuine_fold: NDArray[np.int64]
    genuine_template: NDArray[np.int64]  # which template each genuine attempt tried
    impostor: FloatArray
    impostor_fold: NDArray[np.int64]
    unprotected_genuine: FloatArray  # negated Euclidean distance to the mean enrolled embedding
    unprotected_impostor: FloatArray
    attacks: dict[str, int]  # attack -> templates it opened (of `templates`)
    enroll_seconds: list[float]
    decision_seconds: list[float]

    def fold_mask(
        self, fold: int, *, held_out: bool
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Genuine and impostor masks of one fold (``held_out``) or of every other fold."""
        g, i = self.genuine_fold == fold, self.impostor_fold == fold
        return (g, i) if held_out else (~g, ~i)


def size_tasks(
    table: EmbeddingTable,
    folds: dict[str, int],
    *,
    impostors: int,
    rng: np.random.Generator,
    sizes: tuple[int, ...] = SIZES,
    attack: bool = True,
) -> tuple[dict[int, list[SizeTask]], int]:
    """Tasks per size, and the photos the capture pipeline refused (failures to acquire)."""
    people: dict[str, list[int]] = {}
    refused = 0
    for key in table.keys:
        person = key.split("/", 1)[0]
        if person not in folds:
            continue
        if table.ok(key):
            people.setdefault(person, []).append(table.index[key])
        else:
            refused += 1
    pool: dict[int, list[tuple[str, int]]] = {}
    for person, indices in people.items():
        pool.setdefault(folds[person], []).extend((person, i) for i in indices)
    tasks: dict[int, list[SizeTask]] = {s: [] for s in sizes}
    for size in sizes:
        for person, indices in sorted(people.items()):
            if len(indices) <= size:
                continue
            fold = folds[person]
            others = [i for p, i in pool[fold] if p != person]
            chosen = rng.choice(len(others), size=min(impostors, len(others)), replace=False)
            tasks[size].append(
                SizeTask(
                    size=size,
                    fold=fold,
                    person=person,
                    enroll=indices[:size],
                    genuine=indices[size:],
                    impostor=[others[i] for i in sorted(chosen)],
                    attack=attack,
                )
            )
    return tasks, refused


# --- worker side (a process pool; each worker gets the vectors once) ------------------

_VECTORS: FloatArray | None = None
_PARAMS = TemplateParams()
_PEPPER = b""
_POPULATION: Population | None = None


def init_worker(
    vectors: FloatArray, params: TemplateParams, pepper: bytes, population: Population
) -> None:
    global _VECTORS, _PARAMS, _PEPPER, _POPULATION
    from threadpoolctl import threadpool_limits

    # One BLAS thread per worker: the pool already uses every core, and spinning BLAS
    # threads on an oversubscribed machine cost 5-10x (measured).
    threadpool_limits(1)
    if hasattr(os, "nice"):
        os.nice(5)
    _VECTORS, _PARAMS, _PEPPER, _POPULATION = vectors, params, pepper, population


def run_size_task(task: SizeTask) -> SizeTaskResult:
    assert _VECTORS is not None and _POPULATION is not None
    vectors, bind = _VECTORS, b"bench"
    started = time.perf_counter()
    template, kappa = enroll(
        vectors[task.enroll], pepper=_PEPPER, bind=bind, params=_PARAMS, population=_POPULATION
    )
    enrolled = time.perf_counter()
    # One verification's template decision as the API makes it: decrypt the helper
    # data, regenerate the keyed rows, decode, check the commitment.
    opened = open_template(template, pepper=_PEPPER, bind=bind, population=_POPULATION)
    opened.recover(vectors[task.genuine[:1]])
    decision = time.perf_counter() - enrolled
    kappas, scores = opened.recover(vectors[task.genuine + task.impostor])
    # recover() already checked each κ against the commitment; keep only the
    # enrollment's own (any other would be a commitment collision).
    scores = np.array([s if k == kappa else -np.inf for k, s in zip(kappas, scores, strict=True)])
    return SizeTaskResult(
        genuine_score=scores[: len(task.genuine)].tolist(),
        impostor_score=scores[len(task.genuine) :].tolist(),
        enroll_seconds=enrolled - started,
        decision_seconds=decision,
        attacks_opened=(
            _attacks(opened, kappa, vectors[task.impostor], _POPULATION)
            if task.attack
            else [False] * len(ATTACKS)
        ),
    )


def _attacks(
    opened: OpenedTemplate, kappa: bytes, crowd: FloatArray, population: Population
) -> list[bool]:
    """The crafted faces of :data:`ATTACKS`, each tried once: which opened the template."""
    soft = opened.projection.soft(crowd)
    signed = soft * (1.0 - 2.0 * opened.offset.astype(np.float64))[None, :]
    # The decoder's confidence in each block: an attacker with the pepper can rank the
    # faces of a data set by how close to *some* codeword each one lands.
    _, margin = rm_decode_soft(signed)
    nearest = crowd[np.argsort(-margin.mean(axis=1))[:NEAREST]]
    unit = nearest / np.linalg.norm(nearest, axis=1, keepdims=True)
    faces = np.stack([population.mean, crowd.mean(axis=0), unit.mean(axis=0)])
    kappas, _ = opened.recover(faces)
    opened_by = [k == kappa for k in kappas]
    majority = np.where(np.sum(np.sign(soft), axis=0) >= 0, 1.0, -1.0)
    majority_signed = majority * (1.0 - 2.0 * opened.offset.astype(np.float64))
    symbols, _ = rm_decode_soft(majority_signed[None, :])
    messages, ok, _ = opened.code.decode(symbols)
    majority_opened = bool(ok[0]) and bytes(int(v) for v in messages[0]) == kappa
    return [opened_by[0], opened_by[1], majority_opened, opened_by[2]]


# --- the main process ---------------------------------------------------------------------


def score_sizes(
    tasks: dict[int, list[SizeTask]],
    vectors: FloatArray,
    *,
    params: TemplateParams,
    pepper: bytes,
    population: Population | None = None,
    workers: int = 2,
    progress_factory: Callable[[str, int], Callable[[int], None]] | None = None,
) -> dict[int, SizeScores]:
    population = population or shipped()
    out: dict[int, SizeScores] = {}
    with ProcessPoolExecutor(
        max_workers=max(1, workers),
        initializer=init_worker,
        initargs=(vectors, params, pepper, population),
    ) as pool:
        for size, size_list in tasks.items():
            label = f"{size}-photo templates"
            tick = progress_factory(label, len(size_list)) if progress_factory else None
            out[size] = _collect(size, size_list, vectors, pool, tick)
    return out


def _collect(
    size: int,
    tasks: list[SizeTask],
    vectors: FloatArray,
    pool: ProcessPoolExecutor,
    tick: Callable[[int], None] | None,
) -> SizeScores:
    gen: list[float] = []
    gen_fold: list[int] = []
    gen_tpl: list[int] = []
    imp: list[float] = []
    imp_fold: list[int] = []
    un_g: list[FloatArray] = []
    un_i: list[FloatArray] = []
    attacks = dict.fromkeys(ATTACKS, 0)
    enroll_s: list[float] = []
    decide_s: list[float] = []
    for number, (task, res) in enumerate(
        zip(tasks, pool.map(run_size_task, tasks, chunksize=4), strict=True)
    ):
        gen += res.genuine_score
        gen_fold += [task.fold] * len(res.genuine_score)
        gen_tpl += [number] * len(res.genuine_score)
        imp += res.impostor_score
        imp_fold += [task.fold] * len(res.impostor_score)
        centre = vectors[task.enroll].mean(axis=0)
        un_g.append(-np.linalg.norm(vectors[task.genuine] - centre, axis=1))
        un_i.append(-np.linalg.norm(vectors[task.impostor] - centre, axis=1))
        for name, hit in zip(ATTACKS, res.attacks_opened, strict=True):
            attacks[name] += int(hit)
        enroll_s.append(res.enroll_seconds)
        decide_s.append(res.decision_seconds)
        if tick:
            tick(1)
    return SizeScores(
        size=size,
        templates=len(tasks),
        genuine=np.array(gen),
        genuine_fold=np.array(gen_fold, dtype=np.int64),
        genuine_template=np.array(gen_tpl, dtype=np.int64),
        impostor=np.array(imp),
        impostor_fold=np.array(imp_fold, dtype=np.int64),
        unprotected_genuine=np.concatenate(un_g) if un_g else np.zeros(0),
        unprotected_impostor=np.concatenate(un_i) if un_i else np.zeros(0),
        attacks=attacks,
        enroll_seconds=enroll_s,
        decision_seconds=decide_s,
    )


def transaction_failures(
    accepted: NDArray[np.bool_], templates: NDArray[np.int64], attempts: int = 3
) -> tuple[int, int]:
    """(failed, transactions): each template's genuine photos in turns of up to
    ``attempts`` distinct photos, in order; a transaction fails if none of its photos is
    accepted. A person with fewer photos left has a shorter (harder) last transaction."""
    failed = total = 0
    for number in np.unique(templates):
        hits = accepted[templates == number]
        for start in range(0, len(hits), attempts):
            total += 1
            failed += int(not hits[start : start + attempts].any())
    return failed, total
