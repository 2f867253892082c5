"""``vault bench store``: envelope encryption throughput, store/read latency as the
store grows, and FHIR bundle import speed. Everything runs in one process.

How the large store is made (stated in the output too): the patients and the records
measured are stored through :class:`RecordService` (validation, encryption, blob write
with fsync, commit). The *filler* records that grow the tables to 10 thousand and
1 million rows are inserted straight into SQL with ``executemany``: real-shaped rows
(random ids, 60-byte wrapped keys, hashes, blob keys) but no blob files — writing a
million blobs would measure the filesystem, not the store.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select, text

from vault.crypto.envelope import (
    PatientKeyCache,
    RecordContext,
    WrappedPatientKey,
    new_patient_key,
)
from vault.crypto.keyring import StaticKeyring, new_keyring
from vault.records.fhir import FHIR_CONTENT_TYPE
from vault.records.service import RecordService
from vault.records.types import RecordLimits
from vault.store.blobs import LocalBlobStore
from vault.store.database import make_engine, make_session_factory, transaction
from vault.store.migrate import upgrade
from vault.store.record_models import RecordRow, RecordVersionRow

Echo = Callable[[str], None]
SIZES = [("1 KB", 1 << 10), ("100 KB", 100 << 10), ("10 MB", 10 << 20)]


# --- encryption throughput ---------------------------------------------------------------


def _throughput(operation: Callable[[], object], size: int, seconds: float) -> float:
    """MB/s of ``operation`` over at least ``seconds`` (and at least 3 calls)."""
    calls, started = 0, time.perf_counter()
    while True:
        operation()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and calls >= 3:
            return calls * size / elapsed / 1e6


def bench_encryption(echo: Echo, *, seconds: float = 0.4, rounds: int = 3) -> None:
    echo(f"Encryption throughput (MB/s; best of {rounds} interleaved rounds, one core)")
    echo(
        "  envelope = what RecordService does per record: patient key from its unwrap cache"
        " (keyed by the wrapped bytes of the row), RecordContext,"
    )
    echo(
        "             fresh 256-bit data key and two random nonces, AES-256-GCM of the"
        " body under the data key, data key wrapped under the patient key (format 1)"
    )
    echo("  bare     = AESGCM(key).encrypt/decrypt from `cryptography`, key object reused,")
    echo("             fresh os.urandom(12) nonce per encrypt, same plaintext and AAD size")
    echo(
        "  floor    = the library calls a fresh data key per version cannot avoid, and"
        " nothing else: os.urandom(44),"
    )
    echo(
        "             AESGCM(data key), body encrypt, data key wrapped with a kept key"
        " (decrypt: unwrap, AESGCM(data key), body decrypt)"
    )
    echo(
        f"  {'size':>7} | {'bare enc':>9} {'env enc':>9} {'ratio':>6} {'floor':>6} | "
        f"{'bare dec':>9} {'env dec':>9} {'ratio':>6} {'floor':>6}"
    )
    for label, size in SIZES:
        best = _bench_size(size, seconds=seconds, rounds=rounds)
        echo(
            f"  {label:>7} | {best['be']:9.0f} {best['ee']:9.0f} {best['ee'] / best['be']:5.2f}x "
            f"{best['fe'] / best['be']:5.2f}x | "
            f"{best['bd']:9.0f} {best['ed']:9.0f} {best['ed'] / best['bd']:5.2f}x "
            f"{best['fd'] / best['bd']:5.2f}x"
        )
    echo(
        "  floor/bare is the best ratio any envelope with a fresh data key per version can reach"
        " with this library"
    )
    _fixed_costs(echo)


def _bench_size(size: int, *, seconds: float, rounds: int) -> dict[str, float]:
    keyring = StaticKeyring(new_keyring())
    patient_id, record_id = str(uuid.uuid4()), str(uuid.uuid4())
    _key, wrapped = new_patient_key(keyring.get(), patient_id)
    row = (wrapped.master_version, wrapped.wrapped)  # what the service reads per operation
    patient_keys = PatientKeyCache()
    bare_key = AESGCM(AESGCM.generate_key(bit_length=256))
    data = os.urandom(size)
    context = RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE)
    aad = context.record_aad()
    nonce = os.urandom(12)
    bare_ciphertext = bare_key.encrypt(nonce, data, aad)
    sealed = patient_keys.unwrap(keyring.get(), patient_id, wrapped).encrypt(context, data)

    def bare_encrypt() -> object:
        return bare_key.encrypt(os.urandom(12), data, aad)

    def envelope_encrypt() -> object:  # as RecordService._write, per record
        key = patient_keys.unwrap(keyring.get(), patient_id, WrappedPatientKey(*row))
        return key.encrypt(RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE), data)

    def bare_decrypt() -> object:
        return bare_key.decrypt(nonce, bare_ciphertext, aad)

    def envelope_decrypt() -> object:  # as RecordService.get_record, after the blob read
        key = patient_keys.unwrap(keyring.get(), patient_id, WrappedPatientKey(*row))
        return key.decrypt(
            RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE),
            sealed.ciphertext,
            sealed.wrapped_data_key,
        )

    # The floor: only the library calls a fresh data key per version makes unavoidable,
    # with the patient key's AESGCM kept as the service keeps it, and no other Python.
    wrapping = AESGCM(AESGCM.generate_key(bit_length=256))
    key_aad = context.data_key_aad()
    zero_nonce = bytes(12)
    drawn = os.urandom(44)
    floor_wrapped = wrapping.encrypt(drawn[32:], drawn[:32], key_aad)
    floor_ciphertext = AESGCM(drawn[:32]).encrypt(zero_nonce, data, aad)

    def floor_encrypt() -> object:
        draw = os.urandom(44)
        body = AESGCM(draw[:32]).encrypt(zero_nonce, data, aad)
        return body, wrapping.encrypt(draw[32:], draw[:32], key_aad)

    def floor_decrypt() -> object:
        data_key = wrapping.decrypt(drawn[32:], floor_wrapped, key_aad)
        return AESGCM(data_key).decrypt(zero_nonce, floor_ciphertext, aad)

    operations = {
        "be": bare_encrypt,
        "ee": envelope_encrypt,
        "fe": floor_encrypt,
        "bd": bare_decrypt,
        "ed": envelope_decrypt,
        "fd": floor_decrypt,
    }
    best = dict.fromkeys(operations, 0.0)
    for _ in range(rounds):  # interleaved, so a noisy neighbour hurts every side alike
        for name, operation in operations.items():
            best[name] = max(best[name], _throughput(operation, size, seconds))
    return best


def _microseconds(operation: Callable[[], object], calls: int = 20_000) -> float:
    """Best of 5 batches of ``calls``, in microseconds per call."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            operation()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def _fixed_costs(echo: Echo) -> None:
    """What the envelope adds per record, piece by piece: why small records fall short."""
    keyring = StaticKeyring(new_keyring())
    patient_id, record_id = str(uuid.uuid4()), str(uuid.uuid4())
    _key, wrapped = new_patient_key(keyring.get(), patient_id)
    row = (wrapped.master_version, wrapped.wrapped)
    patient_keys = PatientKeyCache()
    context = RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE)
    patient_key = patient_keys.unwrap(keyring.get(), patient_id, wrapped)
    empty = patient_key.encrypt(context, b"")
    bare = AESGCM(os.urandom(32))
    key32, nonce, aad = os.urandom(32), os.urandom(12), context.record_aad()
    bare_empty = bare.encrypt(nonce, b"", aad)
    key_aad = context.data_key_aad()
    wrapped_key = bare.encrypt(nonce, key32, key_aad)

    def lookup() -> object:
        patient_keys.unwrap(keyring.get(), patient_id, WrappedPatientKey(*row))
        return RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE)

    def envelope_encrypt() -> object:
        return patient_keys.unwrap(keyring.get(), patient_id, WrappedPatientKey(*row)).encrypt(
            RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE), b""
        )

    def envelope_decrypt() -> object:
        return patient_keys.unwrap(keyring.get(), patient_id, WrappedPatientKey(*row)).decrypt(
            RecordContext(record_id, patient_id, 1, FHIR_CONTENT_TYPE),
            empty.ciphertext,
            empty.wrapped_data_key,
        )

    cost = {
        "bare_enc": _microseconds(lambda: bare.encrypt(os.urandom(12), b"", aad)),
        "bare_dec": _microseconds(lambda: bare.decrypt(nonce, bare_empty, aad)),
        "env_enc": _microseconds(envelope_encrypt),
        "env_dec": _microseconds(envelope_decrypt),
        "setup": _microseconds(lambda: AESGCM(key32)),
        "wrap": _microseconds(lambda: bare.encrypt(nonce, key32, aad)),
        "unwrap": _microseconds(lambda: bare.decrypt(nonce, wrapped_key, key_aad)),
        "random": _microseconds(lambda: os.urandom(44)) - _microseconds(lambda: os.urandom(12)),
        "lookup": _microseconds(lookup),
    }
    extra_enc = cost["env_enc"] - cost["bare_enc"]
    extra_dec = cost["env_dec"] - cost["bare_dec"]
    glue_enc = extra_enc - cost["setup"] - cost["wrap"] - cost["random"] - cost["lookup"]
    glue_dec = extra_dec - cost["setup"] - cost["unwrap"] - cost["lookup"]
    echo("  fixed cost per record, empty body (us, best of 5 x 20,000 calls):   enc    dec")
    rows = [
        ("bare (urandom(12) +) AESGCM encrypt / decrypt", cost["bare_enc"], cost["bare_dec"]),
        ("envelope", cost["env_enc"], cost["env_dec"]),
        ("envelope - bare", extra_enc, extra_dec),
        ("  AESGCM(fresh data key): key setup", cost["setup"], cost["setup"]),
        ("  wrap / unwrap the data key (reused key)", cost["wrap"], cost["unwrap"]),
        ("  os.urandom(44) instead of os.urandom(12)", cost["random"], 0.0),
        ("  patient-key cache lookup + RecordContext", cost["lookup"], cost["lookup"]),
        ("  the rest (AAD, slicing, result, calls)", glue_enc, glue_dec),
    ]
    for label, enc, dec in rows:
        echo(f"    {label:<62} {enc:5.2f}  {dec:5.2f}")


# --- store and read latency --------------------------------------------------------------


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples: list[float]) -> Latency:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return cls(statistics.median(ordered) * 1000, p99 * 1000)

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms"


def _observation(value: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": value, "unit": "beats/minute"},
        "note": [{"text": "n" * 700}],  # about 1 KB of JSON, a typical Observation
    }


def _fill(engine: Engine, patients: list[str], start: int, stop: int) -> None:
    """Insert filler records ``start..stop`` (metadata rows only, see module docstring)."""
    now = datetime.now(UTC).isoformat(sep=" ")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        batch = 50_000
        for first in range(start, stop, batch):
            ids = [
                str(uuid.UUID(bytes=os.urandom(16), version=4))
                for _ in range(first, min(stop, first + batch))
            ]
            cursor.executemany(
                "INSERT INTO records (id, patient_id, resource_type, category, security_context_id,"
                " current_version, created_at, updated_at, deleted_at)"
                " VALUES (?, ?, 'Observation', 'Observation', NULL, 1, ?, ?, NULL)",
                [(rid, patients[i % len(patients)], now, now) for i, rid in enumerate(ids, first)],
            )
            cursor.executemany(
                "INSERT INTO record_versions (record_id, version, content_type, size, blob_key,"
                " sha256, wrapped_data_key, created_at) VALUES (?, 1, ?, 1000, ?, ?, ?, ?)",
                [
                    (
                        rid,
                        FHIR_CONTENT_TYPE,
                        f"ff/ff/{rid.replace('-', '')}",
                        hashlib.sha256(rid.encode()).hexdigest(),
                        os.urandom(61),
                        now,
                    )
                    for rid in ids
                ],
            )
            raw.commit()
    finally:
        raw.close()


def _measure(
    service: RecordService, patients: list[str], samples: int, seed: int
) -> tuple[Latency, Latency, Latency]:
    stored: list[tuple[str, str]] = []
    put_times: list[float] = []
    for i in range(samples):
        patient = patients[(seed + i) % len(patients)]
        started = time.perf_counter()
        info = service.put_record(patient_id=patient, resource=_observation(i))
        put_times.append(time.perf_counter() - started)
        stored.append((patient, info.record_id))
    read_times: list[float] = []
    order = sorted(range(len(stored)), key=lambda i: hashlib.sha256(b"%d" % (i + seed)).digest())
    for i in order:
        patient, record_id = stored[i]
        started = time.perf_counter()
        service.get_record(patient_id=patient, record_id=record_id)
        read_times.append(time.perf_counter() - started)
    # metadata lookups of random rows anywhere in the table (cold parts included)
    lookup_times: list[float] = []
    with transaction(service._sessions) as session:
        top = session.scalar(text("SELECT max(rowid) FROM records")) or 1
        for _ in range(samples):
            row = 1 + int.from_bytes(os.urandom(4)) % top
            found = session.scalar(text("SELECT id FROM records WHERE rowid = :r"), {"r": row})
            if found is None:
                continue
            lookup_id: str = found
            started = time.perf_counter()
            session.execute(
                select(RecordRow, RecordVersionRow)
                .join(RecordVersionRow, RecordVersionRow.record_id == RecordRow.id)
                .where(
                    RecordRow.id == lookup_id,
                    RecordVersionRow.version == RecordRow.current_version,
                )
            ).one()
            lookup_times.append(time.perf_counter() - started)
    return Latency.of(put_times), Latency.of(read_times), Latency.of(lookup_times)


@contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="vault-bench-store-") as name:
        yield Path(name)


def bench_latency(echo: Echo, *, sizes: list[int], samples: int, work_dir: Path | None) -> None:
    with _work_dir(work_dir) as root:
        db = root / "latency.db"
        for leftover in root.glob("latency.db*"):
            leftover.unlink()
        engine = make_engine(f"sqlite:///{db}")
        upgrade(engine)
        service = RecordService(
            session_factory=make_session_factory(engine),
            blobs=LocalBlobStore(root / "latency-blobs"),
            keyring=StaticKeyring(new_keyring()),
            limits=RecordLimits(),
        )
        patients = [service.create_patient() for _ in range(1000)]
        echo(f"Store and read latency, SQLite (WAL), {samples} ops each, 1 KB Observations")
        echo(
            "  store = validate + encrypt + blob write (fsync) + commit;"
            " read = query + blob read + SHA-256 + decrypt"
        )
        echo(
            "  filler rows inserted by executemany (metadata only, no blob files); measured"
            " records go through the service"
        )
        filled = 0
        results: list[tuple[int, Latency, Latency, Latency]] = []
        for i, target in enumerate(sizes):
            started = time.perf_counter()
            _fill(engine, patients, filled, target - samples * (i + 1))
            filled = target - samples * (i + 1)
            fill_seconds = time.perf_counter() - started
            put, read, lookup = _measure(service, patients, samples, seed=i)
            results.append((target, put, read, lookup))
            echo(
                f"  {target:>9,} records: store {put} | read {read} | "
                f"metadata lookup (random row) {lookup}   [filler {fill_seconds:.0f}s]"
            )
            filled += samples
        if len(results) > 1:
            first, last = results[0], results[-1]
            echo(
                f"  read p99 at {last[0]:,} / at {first[0]:,}: "
                f"{last[2].p99_ms / first[2].p99_ms:.2f}x (target <= 2x); "
                f"store p99 ratio {last[1].p99_ms / first[1].p99_ms:.2f}x"
            )
        engine.dispose()


# --- bundle import -------------------------------------------------------------------------


def bench_import(echo: Echo, *, fhir_dir: Path, work_dir: Path | None) -> None:
    bundles = sorted(fhir_dir.glob("*.json"))
    if not bundles:
        echo(f"Bundle import: no *.json bundles in {fhir_dir}; skipped")
        return
    with _work_dir(work_dir) as root:
        db = root / "import.db"
        for leftover in root.glob("import.db*"):
            leftover.unlink()
        engine = make_engine(f"sqlite:///{db}")
        upgrade(engine)
        service = RecordService(
            session_factory=make_session_factory(engine),
            blobs=LocalBlobStore(root / "import-blobs"),
            keyring=StaticKeyring(new_keyring()),
            limits=RecordLimits(),
        )
        total_resources = total_bytes = 0
        started = time.perf_counter()
        slowest = (0.0, "")
        for path in bundles:
            raw = path.read_bytes()
            patient = service.create_patient()
            one = time.perf_counter()
            result = service.import_bundle(patient_id=patient, bundle=raw)
            slowest = max(slowest, (time.perf_counter() - one, path.name))
            total_resources += result.count
            total_bytes += len(raw)
        elapsed = time.perf_counter() - started
        echo(f"Bundle import ({len(bundles)} bundles from {fhir_dir}, SQLite, each all-or-nothing)")
        echo(
            f"  {total_resources:,} resources, {total_bytes / 1e6:.1f} MB JSON in {elapsed:.1f} s"
            f" = {total_resources / elapsed:,.0f} resources/s"
            f" (validate R4B + encrypt + blob fsync + commit); slowest bundle {slowest[0]:.2f} s"
        )
        engine.dispose()


def run(
    echo: Echo,
    *,
    fhir_dir: Path | None,
    sizes: list[int],
    samples: int,
    work_dir: Path | None,
) -> None:
    echo(f"vault bench store — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    bench_encryption(echo)
    echo("")
    bench_latency(echo, sizes=sizes, samples=samples, work_dir=work_dir)
    echo("")
    if fhir_dir is not None:
        bench_import(echo, fhir_dir=fhir_dir, work_dir=work_dir)


def run_from_cli(
    echo: Echo, *, fhir_dir: str | None, records: str, samples: int, work_dir: str | None
) -> None:
    sizes = [int(n.strip().replace("_", "")) for n in records.split(",") if n.strip()]
    run(
        echo,
        fhir_dir=Path(fhir_dir) if fhir_dir else None,
        sizes=sizes,
        samples=samples,
        work_dir=Path(work_dir) if work_dir else None,
    )
