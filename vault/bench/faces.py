"""``vault bench faces``: the shipped operating point on LFW, per enrollment size.

Both the protected template and unprotected face_recognition run in one process on the
same photos and embeddings. Embeddings may come from a cache (the capture pipeline's
output for public photos); every protected decision — enrollment with a fresh pepper,
keyed transform and κ, helper decryption, soft decoding, RS, commitment check — is
recomputed on every run.

What is reported for each enrollment size (1-5 photos, protocol S in face_protocol.py):

* FMR and FNMR at the **shipped** threshold (vault/biometrics/data/operating_point.json),
  never at one chosen on the measured data, with exact confidence bounds and counts;
  on lfw-dev, whose folds the threshold was fitted on, these are in-sample figures;
* the same rule **cross-validated**: a threshold fitted with the margin on four folds,
  measured on the fifth, pooled over the five — the estimate for faces never seen;
* the FNMR of a transaction of up to 3 attempts; the DET curve; FIDO's FAR at FRR 3 %;
* the offline attack of a holder of the database and the pepper, in bits.

Then unlinkability (D↔sys, face_linkage.py) and capture speed.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vault.bench import face_linkage
from vault.bench.face_dataset import EmbeddingTable, list_photos, load_or_extract, read_folds
from vault.bench.face_protocol import (
    ATTACKS,
    NEAREST,
    SizeScores,
    score_sizes,
    size_tasks,
    transaction_failures,
)
from vault.bench.face_stats import (
    Rate,
    fmr,
    fnmr,
    margin_threshold,
    threshold_at_fnmr,
)
from vault.biometrics import calibration, keys
from vault.biometrics.calibration import OperatingPoint
from vault.biometrics.embedding import DetectorConfig, FaceEncoder
from vault.biometrics.template import TemplateParams

FloatArray = NDArray[np.float64]
FIDO_FAR = 1e-4
FIDO_FRR = 0.03
TRANSACTION_ATTEMPTS = 3
PIN_DIGITS = 6

#: Constructions measured for the docs' table; "shipped" is the default TemplateParams.
CONSTRUCTIONS: dict[str, TemplateParams] = {
    "shipped": TemplateParams(),
    "simhash-hard": TemplateParams(blocks=32, quantizer="sign", soft=False, oversample=1),
    "sin-hard": TemplateParams(blocks=32, soft=False, oversample=1),
    "sin-soft": TemplateParams(blocks=32, oversample=1),
    "sin-soft-reliable": TemplateParams(blocks=32),
}


@dataclass(slots=True)
class BenchConfig:
    lfw: Path
    out_dir: Path
    construction: str = "shipped"
    impostors: int = 150  # impostor photos tried per template
    workers: int = 2
    use_cache: bool = True
    seed: int = 0
    params: TemplateParams | None = None
    linkage_people: int = 200


@dataclass(slots=True)
class CrossValidated:
    """The margin rule fitted on four folds and measured on the fifth, pooled."""

    thresholds: dict[int, float]  # fold -> threshold fitted without it
    fmr: Rate
    fnmr: Rate
    transaction_fnmr: Rate


@dataclass(slots=True)
class BenchReport:
    config: BenchConfig
    params: TemplateParams
    operating_point: OperatingPoint
    scores: dict[int, SizeScores]
    cross_validated: dict[int, CrossValidated]
    refused_photos: int
    linkage: list[face_linkage.Linkage]
    extraction_cached: bool
    photo_times: dict[str, tuple[float, float]]
    pin_seconds: tuple[float, float]
    det_path: Path
    wall_seconds: float


def cross_validate(
    scores: SizeScores, point: OperatingPoint, *, attempts: int = TRANSACTION_ATTEMPTS
) -> CrossValidated:
    folds = sorted(set(scores.genuine_fold.tolist()) | set(scores.impostor_fold.tolist()))
    thresholds: dict[int, float] = {}
    total_fmr, total_fnmr = Rate(0, 0), Rate(0, 0)
    accepted = np.zeros(len(scores.genuine), dtype=bool)
    for fold in folds:
        _, held_in = scores.fold_mask(fold, held_out=False)
        threshold = margin_threshold(scores.impostor[held_in], point.target_fmr, point.confidence)
        thresholds[fold] = threshold
        g, i = scores.fold_mask(fold, held_out=True)
        total_fmr += fmr(scores.impostor[i], threshold)
        total_fnmr += fnmr(scores.genuine[g], threshold)
        accepted[g] = scores.genuine[g] > threshold
    failed, total = transaction_failures(accepted, scores.genuine_template, attempts)
    return CrossValidated(thresholds, total_fmr, total_fnmr, Rate(failed, total))


def run(
    config: BenchConfig,
    *,
    progress_factory: Callable[[str, int], Callable[[int], None]],
) -> BenchReport:
    started = time.perf_counter()
    params = config.params or CONSTRUCTIONS[config.construction]
    table, cached = load_or_extract(
        config.lfw,
        config.out_dir,
        DetectorConfig(policy="central"),
        workers=config.workers,
        use_cache=config.use_cache,
        progress=progress_factory("embeddings", len(list_photos(config.lfw))),
    )
    rng = np.random.default_rng(config.seed)
    vectors = np.nan_to_num(table.vectors)
    tasks, refused = size_tasks(table, read_folds(config.lfw), impostors=config.impostors, rng=rng)
    scores = score_sizes(
        tasks,
        vectors,
        params=params,
        pepper=secrets.token_bytes(32),
        workers=config.workers,
        progress_factory=progress_factory,
    )
    point = calibration.shipped()
    validated = {size: cross_validate(s, point) for size, s in scores.items()}
    first, second = _linkage_faces(table, config.linkage_people, rng)
    linkage = face_linkage.measure(
        first,
        second,
        workers=config.workers,
        progress=progress_factory("unlinkability", 5 * len(first)),
    )
    det_path = config.out_dir / f"det-{config.construction}.png"
    plot_det(scores, point, config.lfw, det_path)
    photo_times = {"250x250 (LFW)": time_photo(config.lfw / "images" / table.keys[0])}
    sample = Path(__file__).resolve().parents[2] / "sample_data" / "faces"
    if (sample / "obama-1080p.jpg").exists():
        photo_times["1920x1080"] = time_photo(sample / "obama-1080p.jpg")
    return BenchReport(
        config, params, point, scores, validated, refused, linkage, cached, photo_times,
        time_second_factor(), det_path, time.perf_counter() - started,
    )  # fmt: skip


def _linkage_faces(
    table: EmbeddingTable, people: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Two different photos of each of ``people`` random people with two or more."""
    by_person: dict[str, list[int]] = {}
    for key in table.keys:
        if table.ok(key):
            by_person.setdefault(key.split("/", 1)[0], []).append(table.index[key])
    pairs = [ids[:2] for _, ids in sorted(by_person.items()) if len(ids) >= 2]
    chosen = rng.choice(len(pairs), size=min(people, len(pairs)), replace=False)
    vectors = np.nan_to_num(table.vectors)
    return vectors[[pairs[i][0] for i in chosen]], vectors[[pairs[i][1] for i in chosen]]


# --- figures -----------------------------------------------------------------------------


def fnmr_at_fmr(genuine: FloatArray, impostor: FloatArray, rate: float) -> tuple[float, float]:
    """(FNMR, achieved FMR) at the loosest threshold whose FMR does not exceed ``rate``
    *on these scores* (the curve; never a shipped operating point)."""
    finite = np.sort(impostor[np.isfinite(impostor)])[::-1]
    allowed = int(np.floor(rate * len(impostor)))
    if allowed >= len(finite):  # the code's own operating point is already below rate
        return float(np.mean(~np.isfinite(genuine))), len(finite) / len(impostor)
    threshold = finite[allowed]
    return float(np.mean(genuine <= threshold)), float(np.mean(impostor > threshold))


def det_points(genuine: FloatArray, impostor: FloatArray) -> tuple[FloatArray, FloatArray]:
    finite = np.concatenate([genuine[np.isfinite(genuine)], impostor[np.isfinite(impostor)]])
    thresholds = np.quantile(finite, np.linspace(0, 1, 400)) if finite.size else np.array([0.0])
    rates_fmr = np.array([np.mean(impostor > t) for t in thresholds])
    rates_fnmr = np.array([np.mean(~(genuine > t)) for t in thresholds])
    return rates_fmr, rates_fnmr


def plot_det(scores: dict[int, SizeScores], point: OperatingPoint, lfw: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    for (size, s), colour in zip(sorted(scores.items()), colours, strict=False):
        for label, g, i, style in (
            ("unprotected", s.unprotected_genuine, s.unprotected_impostor, "--"),
            ("protected", s.genuine, s.impostor, "-"),
        ):
            x, y = det_points(g, i)
            keep = x > 0
            ax.plot(x[keep], y[keep], style, color=colour, lw=1, label=f"{size} photos {label}")
        threshold = point.threshold(size)
        ax.plot(
            [max(fmr(s.impostor, threshold).value, 1e-6)],
            [fnmr(s.genuine, threshold).value],
            "o",
            color=colour,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-3, 1)
    ax.axvline(1e-3, color="grey", lw=0.5)
    ax.axvline(1e-4, color="grey", lw=0.5)
    ax.axhline(FIDO_FRR, color="grey", lw=0.5)
    ax.set_xlabel("false match rate (per attempt)")
    ax.set_ylabel("false non-match rate (per attempt)")
    ax.set_title(f"{lfw}: protected template vs face_recognition\n(dots: the shipped thresholds)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", lw=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


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


def time_second_factor(repeats: int = 3) -> tuple[float, float]:
    """One offline PIN guess: Argon2id at the shipped cost, on this core (p50, p95)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        keys.second_factor("000000", secrets.token_bytes(16))
        times.append(time.perf_counter() - start)
    return percentiles(times)


def bits(rate: Rate) -> str:
    """Security of a per-trial success rate, in bits (its 80 % upper bound's too)."""
    if rate.errors == 0:
        return f"> {-math.log2(rate.upper80):.1f} bits (none in {rate.attempts})"
    return f"{-math.log2(rate.value):.1f} bits ({-math.log2(rate.upper80):.1f} at the 80% bound)"


def render(report: BenchReport) -> list[str]:
    """The printed figures, one line each (plain text, so logs and docs can quote them)."""
    p, point = report.params, report.operating_point
    in_sample = report.config.lfw.resolve().name == point.source
    lines = [
        f"construction {report.config.construction}: {p.encode()}  "
        f"(RS({p.blocks},{p.message_symbols}) over RM(1,7), {p.bits} bits, "
        f"corrects {(p.blocks - p.message_symbols) // 2} of {p.blocks} blocks)",
        f"measured folder: {report.config.lfw}; embeddings: "
        f"{'cache' if report.extraction_cached else 'extracted now'}; fresh pepper and "
        f"templates; wall time {report.wall_seconds:.0f} s",
        f"shipped operating point: FMR <= {point.target_fmr:.2%} at the "
        f"{point.confidence:.0%} upper bound, fitted on {point.source} folds "
        f"{','.join(map(str, point.folds))}"
        + (" (the measured folder: shipped-threshold lines are in-sample, the "
           "cross-validated lines are not)" if in_sample else " (not the measured folder)"),
        f"protocol S: enroll a person's first N usable photos, verify each later one; "
        f"{report.config.impostors} impostor photos per template from other people of the "
        f"same fold; {report.refused_photos} photos refused by capture (FTA)",
    ]  # fmt: skip
    for size, s in sorted(report.scores.items()):
        lines += _size_lines(size, s, report.cross_validated[size], point)
    lines += _linkage_lines(report.linkage)
    lines += _second_factor_lines(report)
    for label, (t50, t95) in report.photo_times.items():
        lines.append(f"capture+embedding {label}, one core: p50 {t50:.3f} s p95 {t95:.3f} s")
    lines.append(f"secret bits per template: {p.secret_bits} (κ); see the offline attack lines")
    lines.append(f"DET curve: {report.det_path}")
    return lines


def _size_lines(size: int, s: SizeScores, cv: CrossValidated, point: OperatingPoint) -> list[str]:
    threshold = point.threshold(size)
    shipped_fmr, shipped_fnmr = fmr(s.impostor, threshold), fnmr(s.genuine, threshold)
    failed, total = transaction_failures(
        s.genuine > threshold, s.genuine_template, TRANSACTION_ATTEMPTS
    )
    u3, _ = fnmr_at_fmr(s.unprotected_genuine, s.unprotected_impostor, 1e-3)
    u4, _ = fnmr_at_fmr(s.unprotected_genuine, s.unprotected_impostor, 1e-4)
    p3, _ = fnmr_at_fmr(s.genuine, s.impostor, 1e-3)
    p4, _ = fnmr_at_fmr(s.genuine, s.impostor, 1e-4)
    code = fmr(s.impostor, -math.inf)
    fido_threshold = threshold_at_fnmr(s.genuine, FIDO_FRR)
    fido = fmr(s.impostor, fido_threshold)
    verdict = "meets" if fido.upper80 <= FIDO_FAR else "misses"
    fido_line = (
        f"  FIDO (FAR <= 0.01% at FRR <= 3%, 80% bounds): at FNMR "
        f"{fnmr(s.genuine, fido_threshold).value:.2%} the FMR is {fido.text(3)}: {verdict} "
        f"(needs >= {math.ceil(math.log(0.2) / math.log1p(-FIDO_FAR))} impostor attempts "
        "with none accepted to show it)"
    )
    folds_used = ",".join(f"{t:.4f}" for _, t in sorted(cv.thresholds.items()))
    attacks = ", ".join(f"{name} {s.attacks[name]}" for name in ATTACKS)
    e50, e95 = percentiles(s.enroll_seconds)
    d50, d95 = percentiles(s.decision_seconds)
    return [
        f"{size}-photo templates: {s.templates} templates, {len(s.genuine)} genuine and "
        f"{len(s.impostor)} impostor attempts",
        f"  at the shipped threshold {threshold:.4f}: FMR {shipped_fmr.text(3)}",
        f"    FNMR {shipped_fnmr.text()}; transaction of up to {TRANSACTION_ATTEMPTS} "
        f"attempts FNMR {Rate(failed, total).text()}",
        f"  cross-validated (fit on 4 folds with the margin, measure the 5th; thresholds "
        f"{folds_used}): FMR {cv.fmr.text(3)}",
        f"    FNMR {cv.fnmr.text()}; transaction FNMR {cv.transaction_fnmr.text()}",
        f"  curve: protected FNMR@FMR0.1% {p3:.2%}, @0.01% {p4:.2%}; unprotected "
        f"(Euclidean to the mean enrolled embedding) {u3:.2%}, {u4:.2%}; code's own point "
        f"FNMR {float(np.mean(~np.isfinite(s.genuine))):.2%} FMR {code.value:.3%}",
        fido_line,
        f"  offline attack (database + pepper): each impostor photo is a trial; the code "
        f"alone opened {code.errors} of {code.attempts}: {bits(code)}",
        f"    crafted faces, one trial each, templates opened of {s.templates}: {attacks} "
        f"(the mean of the {NEAREST} faces the decoder rates nearest, after the trials above)",
        f"  template enroll p50 {e50 * 1000:.0f} ms p95 {e95 * 1000:.0f} ms; template "
        f"decision (one verification) p50 {d50 * 1000:.1f} ms p95 {d95 * 1000:.1f} ms",
    ]


def _second_factor_lines(report: BenchReport) -> list[str]:
    t50, t95 = report.pin_seconds
    pin_bits = math.log2(10**PIN_DIGITS)
    argon_days = 10**PIN_DIGITS / 2 * t50 / 86_400
    lines = [
        f"second factor (optional PIN, Argon2id t={keys.PIN_TIME_COST}, "
        f"{keys.PIN_MEMORY_KIB // 1024} MiB): one offline PIN guess p50 {t50:.3f} s p95 "
        f"{t95:.3f} s on one core; a {PIN_DIGITS}-digit PIN adds {pin_bits:.1f} bits: every "
        f"PIN guessed costs one Argon2id and a new transform before any face is tried under "
        f"it, ~{argon_days:.1f} core-days of Argon2id per template on average"
    ]
    for size, s in sorted(report.scores.items()):
        code = fmr(s.impostor, -math.inf)
        if code.errors:
            face_bits = -math.log2(code.value)
            lines.append(
                f"  {size} photos: {face_bits:.1f} bits by face alone, "
                f"{face_bits + pin_bits:.1f} with the PIN (face and PIN trials together)"
            )
    return lines


def _linkage_lines(linkage: list[face_linkage.Linkage]) -> list[str]:
    lines = []
    for link in linkage:
        lines.append(
            f"unlinkability, {link.condition}: D<->sys stored record "
            f"{link.d_sys_stored:.3f}, pepper holder (selected-row overlap) "
            f"{link.d_sys_pepper:.3f}; overlap mated {link.mated_overlap:.3f} vs non-mated "
            f"{link.non_mated_overlap:.3f} ({link.pairs_mated} mated, "
            f"{link.pairs_non_mated} non-mated pairs)"
        )
    return lines
