"""``vault bench faces``: protected templates vs unprotected face_recognition on LFW.

Both run in one process on the same photos and the same embeddings. Embeddings may come
from a cache (they are the capture pipeline's output for public photos); every protected
decision — enrollment with a fresh keyed transform and κ, helper decryption, soft
decoding, RS, commitment check — is recomputed on every run.

Protocols (see docs/biometrics.md):
  A  the pairs file: enroll the first photo of each pair, verify the second;
     impostors: cross-identity (enrolled photo, probe photo) pairs from the same photos.
  B  people with >= 4 photos: enroll the first 3, verify each of the rest; impostors:
     every probe photo against every other person's template.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vault.bench.face_dataset import EmbeddingTable, load_or_extract, photo_key, read_pairs
from vault.biometrics import population
from vault.biometrics.codes import ReedSolomon, rm_decode_soft, rm_encode
from vault.biometrics.embedding import DetectorConfig, FaceEncoder
from vault.biometrics.template import TemplateParams, enroll, open_template

FloatArray = NDArray[np.float64]
DEFAULT_THRESHOLD = 0.6  # face_recognition.compare_faces default

#: Constructions measured for the docs' table; "shipped" is the default TemplateParams.
CONSTRUCTIONS: dict[str, TemplateParams] = {
    "shipped": TemplateParams(),
    # Alternatives measured for docs/biometrics.md (32 blocks = 4,096 bits, 64-bit κ):
    "simhash-hard": TemplateParams(blocks=32, quantizer="sign", soft=False, oversample=1),
    "sin-hard": TemplateParams(blocks=32, soft=False, oversample=1),
    "sin-soft": TemplateParams(blocks=32, oversample=1),
    "sin-soft-reliable": TemplateParams(blocks=32),
}


@dataclass(slots=True)
class Task:
    """One enrolled template and the probes tried against it (indices into vectors)."""

    enroll: list[int]
    genuine: list[int]
    impostor: list[int]
    wolf: bool = False


@dataclass(slots=True)
class TaskResult:
    genuine_score: list[float]
    impostor_score: list[float]
    enroll_seconds: float
    decision_seconds: float
    wolf_opened: int = 0
    bit_ones: list[float] = field(default_factory=list)
    impostor_distance: list[float] = field(default_factory=list)


@dataclass(slots=True)
class ProtocolResult:
    name: str
    templates: int
    fte: int
    fta: int
    genuine_attempts: int
    unprotected_genuine: FloatArray
    unprotected_impostor: FloatArray
    protected_genuine: FloatArray
    protected_impostor: FloatArray
    enroll_seconds: list[float]
    decision_seconds: list[float]
    wolf_templates: int
    wolf_opened: int
    bit_ones: list[float]
    impostor_distance: list[float]


# --- worker side (a process pool; each worker gets the vectors once) ------------------

_VECTORS: FloatArray | None = None
_CROWD: FloatArray | None = None
_PARAMS = TemplateParams()
_PEPPER = b""


def _init(vectors: FloatArray, crowd: FloatArray, params: TemplateParams, pepper: bytes) -> None:
    global _VECTORS, _CROWD, _PARAMS, _PEPPER
    from threadpoolctl import threadpool_limits

    # One BLAS thread per worker: the pool already uses every core, and spinning BLAS
    # threads on an oversubscribed machine cost 5-10x (measured).
    threadpool_limits(1)
    if hasattr(os, "nice"):
        os.nice(5)
    _VECTORS, _CROWD, _PARAMS, _PEPPER = vectors, crowd, params, pepper


def _run_task(task: Task) -> TaskResult:
    assert _VECTORS is not None and _CROWD is not None
    vectors = _VECTORS
    bind = b"bench"
    started = time.perf_counter()
    template, kappa = enroll(vectors[task.enroll], pepper=_PEPPER, bind=bind, params=_PARAMS)
    enrolled = time.perf_counter()
    # One verification's template decision, as the API makes it: decrypt the helper
    # data, regenerate the keyed rows, decode, check the commitment.
    single = open_template(template, pepper=_PEPPER, bind=bind)
    single.recover(vectors[(task.genuine + task.impostor)[:1]])
    decision = time.perf_counter() - enrolled
    opened = open_template(template, pepper=_PEPPER, bind=bind)
    probes = vectors[task.genuine + task.impostor]
    kappas, scores = opened.recover(probes)
    # A κ that opens is checked against the commitment inside recover(); count only the
    # enrollment's own κ (any other would be a commitment collision).
    scores = np.array([s if k == kappa else -np.inf for k, s in zip(kappas, scores, strict=True)])
    result = TaskResult(
        genuine_score=scores[: len(task.genuine)].tolist(),
        impostor_score=scores[len(task.genuine) :].tolist(),
        enroll_seconds=enrolled - started,
        decision_seconds=decision,
    )
    if task.wolf:
        result.wolf_opened = _wolf_attempts(opened, kappa)
        codeword = rm_encode(opened.code.encode(np.frombuffer(kappa, np.uint8).astype(np.int64)))
        bits = opened.offset ^ codeword
        crowd_bits = (opened.projection.soft(_CROWD) < 0).astype(np.uint8)
        result.bit_ones = crowd_bits.mean(axis=0).tolist()
        result.impostor_distance = np.mean(crowd_bits != bits[None, :], axis=1).tolist()
    return result


def _wolf_attempts(opened: object, kappa: bytes) -> int:
    """Population-mean face and per-bit majority of the crowd: how many open (want 0)."""
    from vault.biometrics.template import OpenedTemplate

    assert isinstance(opened, OpenedTemplate) and _CROWD is not None
    mean_faces = np.stack([population.MEAN, _CROWD.mean(axis=0)])
    kappas, _ = opened.recover(mean_faces)
    count = sum(k == kappa for k in kappas)
    soft = opened.projection.soft(_CROWD)
    majority = np.where(np.sum(np.sign(soft), axis=0) >= 0, 1.0, -1.0)
    signed = majority * (1.0 - 2.0 * opened.offset)
    symbols, _ = rm_decode_soft(signed[None, :])
    messages, ok, _ = ReedSolomon(opened.code.n, opened.code.k).decode(symbols)
    if ok[0] and bytes(int(v) for v in messages[0]) == kappa:
        count += 1
    return count


# --- protocols ----------------------------------------------------------------------------


def _persons(keys: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in keys:
        out.setdefault(key.split("/", 1)[0], []).append(key)
    return out


def protocol_a_tasks(
    table: EmbeddingTable, lfw: Path, impostors: int, rng: np.random.Generator
) -> tuple[list[Task], int, int, int]:
    """Tasks, failures to enroll, failures to acquire, genuine attempts."""
    pairs = read_pairs(lfw)
    by_enroll: dict[str, Task] = {}
    fte = fta = genuine = 0
    enroll_keys: list[str] = []
    probe_keys: list[str] = []
    for pair in pairs:
        a, b = photo_key(pair.name_a, pair.index_a), photo_key(pair.name_b, pair.index_b)
        enroll_keys.append(a)
        probe_keys.append(b)
        if not pair.genuine:
            continue
        if not table.ok(a):
            fte += 1
            continue
        if not table.ok(b):
            fta += 1
            continue
        genuine += 1
        task = by_enroll.setdefault(a, Task([table.index[a]], [], []))
        task.genuine.append(table.index[b])
    enrolled = sorted({k for k in enroll_keys if table.ok(k)})
    probes = sorted({k for k in probe_keys if table.ok(k)})
    per_template = max(1, -(-impostors // len(enrolled)))
    for key in enrolled:
        task = by_enroll.setdefault(key, Task([table.index[key]], [], []))
        person = key.split("/", 1)[0]
        chosen = rng.choice(len(probes), size=min(len(probes), per_template + 8), replace=False)
        others = [probes[i] for i in chosen if probes[i].split("/", 1)[0] != person]
        task.impostor = [table.index[k] for k in others[:per_template]]
    return list(by_enroll.values()), fte, fta, genuine


def protocol_b_tasks(table: EmbeddingTable) -> tuple[list[Task], int, int, int]:
    people = {p: ks for p, ks in _persons(table.keys).items() if len(ks) >= 4}
    templates: list[tuple[str, list[int]]] = []
    probes: list[tuple[str, int]] = []
    fte = fta = 0
    for person, keys in sorted(people.items()):
        if not all(table.ok(k) for k in keys[:3]):
            fte += 1
            continue
        templates.append((person, [table.index[k] for k in keys[:3]]))
        for key in keys[3:]:
            if table.ok(key):
                probes.append((person, table.index[key]))
            else:
                fta += 1
    tasks = [
        Task(
            enroll=idx,
            genuine=[i for p, i in probes if p == person],
            impostor=[i for p, i in probes if p != person],
            wolf=True,
        )
        for person, idx in templates
    ]
    genuine = sum(len(t.genuine) for t in tasks)
    return tasks, fte, fta, genuine


def _unprotected(vectors: FloatArray, tasks: list[Task]) -> tuple[FloatArray, FloatArray]:
    """Scores (negated Euclidean distance to the mean enrolled embedding)."""
    gen: list[FloatArray] = []
    imp: list[FloatArray] = []
    for task in tasks:
        centre = vectors[task.enroll].mean(axis=0)
        gen.append(-np.linalg.norm(vectors[task.genuine] - centre, axis=1))
        imp.append(-np.linalg.norm(vectors[task.impostor] - centre, axis=1))
    return np.concatenate(gen), np.concatenate(imp)


def run_protocol(
    name: str,
    tasks: list[Task],
    fte: int,
    fta: int,
    genuine: int,
    vectors: FloatArray,
    pool: ProcessPoolExecutor,
    progress: Callable[[int], None],
) -> ProtocolResult:
    un_g, un_i = _unprotected(vectors, tasks)
    gen: list[float] = []
    imp: list[float] = []
    enroll_s: list[float] = []
    decide_s: list[float] = []
    wolves = opened = 0
    ones: list[float] = []
    dist: list[float] = []
    for task, res in zip(tasks, pool.map(_run_task, tasks, chunksize=4), strict=True):
        gen += res.genuine_score
        imp += res.impostor_score
        enroll_s.append(res.enroll_seconds)
        decide_s.append(res.decision_seconds)
        if task.wolf:
            wolves += 1
            opened += res.wolf_opened
            ones += res.bit_ones
            dist += res.impostor_distance
        progress(1)
    return ProtocolResult(
        name, len(tasks), fte, fta, genuine, un_g, un_i, np.array(gen), np.array(imp),
        enroll_s, decide_s, wolves, opened, ones, dist,
    )  # fmt: skip


# --- figures -----------------------------------------------------------------------------


def fnmr_at_fmr(genuine: FloatArray, impostor: FloatArray, fmr: float) -> tuple[float, float]:
    """(FNMR, achieved FMR) at the loosest threshold whose FMR does not exceed ``fmr``.

    Scores are "higher is more similar"; ``-inf`` means rejected at any threshold (a
    protected attempt that did not recover κ).
    """
    finite = np.sort(impostor[np.isfinite(impostor)])[::-1]
    allowed = int(np.floor(fmr * len(impostor)))
    if allowed >= len(finite):  # the code's own operating point is already below fmr
        return float(np.mean(~np.isfinite(genuine))), len(finite) / len(impostor)
    threshold = finite[allowed]  # accept strictly above: at most `allowed` impostors
    return float(np.mean(genuine <= threshold)), float(np.mean(impostor > threshold))


def threshold_at_fmr(impostor: FloatArray, fmr: float) -> float:
    """The score an accepted attempt must exceed for FMR <= ``fmr`` (-inf: none needed)."""
    finite = np.sort(impostor[np.isfinite(impostor)])[::-1]
    allowed = int(np.floor(fmr * len(impostor)))
    return float(finite[allowed]) if allowed < len(finite) else float("-inf")


def eer(genuine: FloatArray, impostor: FloatArray) -> float:
    thresholds = np.unique(
        np.concatenate([genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]])
    )
    best = 1.0
    for t in thresholds[:: max(1, len(thresholds) // 4000)]:
        fnmr = float(np.mean(genuine < t))
        fmr = float(np.mean(impostor >= t))
        best = min(best, max(fnmr, fmr))
    return best


def det_points(genuine: FloatArray, impostor: FloatArray) -> tuple[FloatArray, FloatArray]:
    finite = np.concatenate([genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]])
    thresholds = np.quantile(finite, np.linspace(0, 1, 400)) if finite.size else np.array([0.0])
    fmr = np.array([np.mean(impostor >= t) for t in thresholds])
    fnmr = np.array([np.mean(genuine < t) for t in thresholds])
    return fmr, fnmr


def plot_det(results: list[ProtocolResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for res, colour in zip(results, ("tab:blue", "tab:orange"), strict=False):
        for label, g, i, style in (
            ("unprotected", res.unprotected_genuine, res.unprotected_impostor, "--"),
            ("protected", res.protected_genuine, res.protected_impostor, "-"),
        ):
            fmr, fnmr = det_points(g, i)
            keep = fmr > 0
            ax.plot(
                fmr[keep], fnmr[keep], style, color=colour, label=f"protocol {res.name} {label}"
            )
        op_fmr = float(np.mean(np.isfinite(res.protected_impostor)))
        op_fnmr = float(np.mean(~np.isfinite(res.protected_genuine)))
        ax.plot([max(op_fmr, 1e-6)], [op_fnmr], "o", color=colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-3, 1)
    ax.axvline(1e-3, color="grey", lw=0.5)
    ax.axvline(1e-4, color="grey", lw=0.5)
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.set_title("LFW (lfw-dev): protected template vs face_recognition (dots: code's own point)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", lw=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def chunks(items: list[Task], size: int) -> Iterator[list[Task]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def percentiles(values: list[float] | FloatArray) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def time_photo(photo: Path, repeats: int = 7) -> tuple[float, float]:
    """Capture + embedding time of one photo on this core (p50, p95)."""
    encoder = FaceEncoder()
    data = photo.read_bytes()
    encoder.encode(data)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(data)
        times.append(time.perf_counter() - start)
    return percentiles(times)


@dataclass(slots=True)
class BenchConfig:
    lfw: Path
    out_dir: Path
    construction: str = "shipped"
    impostors: int = 150_000
    workers: int = 2
    use_cache: bool = True
    seed: int = 0
    params: TemplateParams | None = None


@dataclass(slots=True)
class BenchReport:
    config: BenchConfig
    params: TemplateParams
    results: list[ProtocolResult]
    extraction_cached: bool
    capture_seconds: list[float]
    photo_times: dict[str, tuple[float, float]]
    det_path: Path
    wall_seconds: float


def run(
    config: BenchConfig,
    *,
    progress_factory: Callable[[str, int], Callable[[int], None]],
) -> BenchReport:
    started = time.perf_counter()
    params = config.params or CONSTRUCTIONS[config.construction]
    detector = DetectorConfig(policy="central")
    table, cached = load_or_extract(
        config.lfw,
        config.out_dir,
        detector,
        workers=config.workers,
        use_cache=config.use_cache,
        progress=progress_factory("embeddings", len(table_keys(config.lfw))),
    )
    rng = np.random.default_rng(config.seed)
    vectors = np.nan_to_num(table.vectors)
    ok = np.array([s == "ok" for s in table.status])
    crowd = vectors[ok][rng.choice(int(ok.sum()), size=min(1000, int(ok.sum())), replace=False)]
    pepper = secrets.token_bytes(32)
    a = protocol_a_tasks(table, config.lfw, config.impostors, rng)
    b = protocol_b_tasks(table)
    results = []
    with ProcessPoolExecutor(
        max_workers=max(1, config.workers),
        initializer=_init,
        initargs=(vectors, crowd, params, pepper),
    ) as pool:
        for name, (tasks, fte, fta, genuine) in (("A", a), ("B", b)):
            tick = progress_factory(f"protocol {name}", len(tasks))
            results.append(run_protocol(name, tasks, fte, fta, genuine, vectors, pool, tick))
    det_path = config.out_dir / f"det-{config.construction}.png"
    plot_det(results, det_path)
    photo_times: dict[str, tuple[float, float]] = {}
    sample = Path(__file__).resolve().parents[2] / "sample_data" / "faces"
    lfw_photo = config.lfw / "images" / table.keys[0]
    photo_times["250x250 (LFW)"] = time_photo(lfw_photo)
    if (sample / "obama-1080p.jpg").exists():
        photo_times["1920x1080"] = time_photo(sample / "obama-1080p.jpg")
    capture = [float(s) for s, st in zip(table.seconds, table.status, strict=True) if st == "ok"]
    return BenchReport(
        config, params, results, cached, capture, photo_times, det_path,
        time.perf_counter() - started,
    )  # fmt: skip


def table_keys(lfw: Path) -> list[str]:
    from vault.bench.face_dataset import list_photos

    return list_photos(lfw)


def render(report: BenchReport) -> list[str]:
    """The printed figures, one line each (plain text, so logs and docs can quote them)."""
    p = report.params
    lines = [
        f"construction {report.config.construction}: {p.encode()}  "
        f"(RS({p.blocks},{p.message_symbols}) over RM(1,7), {p.bits} bits, "
        f"corrects {(p.blocks - p.message_symbols) // 2} of {p.blocks} blocks)",
        f"embeddings: {'cache' if report.extraction_cached else 'extracted now'}; "
        f"protected decisions recomputed; wall time {report.wall_seconds:.0f} s",
    ]
    baseline: float | None = None
    for res in report.results:
        ug, ui = res.unprotected_genuine, res.unprotected_impostor
        pg, pi = res.protected_genuine, res.protected_impostor
        default_fnmr = float(np.mean(-ug > DEFAULT_THRESHOLD))
        default_fmr = float(np.mean(-ui <= DEFAULT_THRESHOLD))
        code_fnmr = float(np.mean(~np.isfinite(pg)))
        code_fmr = float(np.mean(np.isfinite(pi)))
        u3, _ = fnmr_at_fmr(ug, ui, 1e-3)
        u4, _ = fnmr_at_fmr(ug, ui, 1e-4)
        p3, a3 = fnmr_at_fmr(pg, pi, 1e-3)
        p4, a4 = fnmr_at_fmr(pg, pi, 1e-4)
        if res.name == "A":
            baseline = u3
        tau3 = threshold_at_fmr(pi, 1e-3)
        protected_eer = (
            f"{eer(pg, pi):.2%}"
            if code_fmr >= code_fnmr
            else f"not reached (curve ends at FMR {code_fmr:.3%})"
        )
        attempts = res.fte + res.fta + res.genuine_attempts
        lines += [
            f"protocol {res.name}: {res.templates} templates, {len(pg)} genuine and "
            f"{len(pi)} impostor attempts; FTE {res.fte} ({res.fte / max(1, attempts):.2%}), "
            f"FTA {res.fta} ({res.fta / max(1, attempts):.2%})",
            f"  unprotected (Euclidean to mean enrolled embedding): FNMR@FMR0.1% {u3:.2%}  "
            f"FNMR@FMR0.01% {u4:.2%}  EER {eer(ug, ui):.2%}  "
            f"default <=0.6: FNMR {default_fnmr:.2%} FMR {default_fmr:.3%}",
            f"  protected: FNMR@FMR0.1% {p3:.2%} (FMR {a3:.3%})  FNMR@FMR0.01% {p4:.2%} "
            f"(FMR {a4:.4%})  EER {protected_eer}  code's own point: FNMR {code_fnmr:.2%} "
            f"FMR {code_fmr:.4%} ({int(np.isfinite(pi).sum())} impostors opened)",
        ]
        lines.append(
            f"  protected score threshold at FMR 0.1%: {tau3:.4f} "
            "(VAULT_FACE_MIN_MATCH_SCORE; the code alone accepts any score)"
        )
        if baseline:
            lines.append(
                f"  ratio protected FNMR@FMR0.1% / unprotected protocol A: {p3 / baseline:.2f}"
            )
        e50, e95 = percentiles(res.enroll_seconds)
        d50, d95 = percentiles(res.decision_seconds)
        lines.append(
            f"  template enroll p50 {e50 * 1000:.0f} ms p95 {e95 * 1000:.0f} ms; "
            f"template decision (one verification) p50 {d50 * 1000:.1f} ms "
            f"p95 {d95 * 1000:.1f} ms"
        )
        if res.wolf_templates:
            ones = np.asarray(res.bit_ones)
            dist = np.asarray(res.impostor_distance)
            dof = float(dist.mean() * (1 - dist.mean()) / max(dist.var(), 1e-12))
            lines += [
                f"  wolves (population mean face, crowd mean face, per-bit majority) on "
                f"{res.wolf_templates} templates: {res.wolf_opened} opened",
                f"  bit bias over 1000 lfw-dev faces: mean |P(1)-0.5| "
                f"{np.abs(ones - 0.5).mean():.3f}, "
                f"max {np.abs(ones - 0.5).max():.3f}; impostor bit disagreement "
                f"{dist.mean():.3f} ± {dist.std():.3f} -> {dof:.0f} degrees of freedom",
            ]
    c50, c95 = percentiles(report.capture_seconds)
    lines.append(
        f"capture+embedding per LFW photo during extraction ({report.config.workers} workers"
        f"{', cached' if report.extraction_cached else ''}): p50 {c50:.3f} s p95 {c95:.3f} s"
    )
    for label, (t50, t95) in report.photo_times.items():
        lines.append(f"capture+embedding {label}, one core: p50 {t50:.3f} s p95 {t95:.3f} s")
    lines.append(
        f"secret bits per template: {report.params.secret_bits} (κ); see the degrees of "
        "freedom above and docs/biometrics.md for the honest entropy"
    )
    lines.append(f"DET curve: {report.det_path}")
    return lines
