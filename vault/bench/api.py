"""``vault bench api``: the enforced provider read against the same bytes with no checks,
on each deployment shape, and the revoke-to-deny result of each.

For every shape (:mod:`vault.bench.shapes`: SQLite with one process, PostgreSQL with one
and with two, and optionally an older commit's code on SQLite), a vault is served fresh on
loopback and then:

1. Setup through the API (as ``vault demo`` does): a patient enrolls and stores one
   Observation; the operator registers a fresh provider; it signs in, asks, the patient
   approves with a photo.
2. At concurrency 1, 8 and 32, the authorized provider read
   ``GET /provider/patients/{h}/records/{id}?purpose=TREAT`` (token, consent decision for
   the chain head fetched after the read arrived, decrypt, audit entry committed) and
   ``GET /bench/records/{h}/{id}`` (the same record read and decrypted from the store and
   answered in the same bytes, with none of the read's checks; :mod:`vault.bench.app`),
   each cell in rounds interleaved with the other endpoint's.
3. Under load (8 readers), the patient revokes; every read that *starts* after the
   revoke's response must be refused. The lag is reported in blocks.

The load client is a minimal HTTP/1.1 keep-alive client on asyncio streams (one
connection per concurrent client) so that the client's own CPU, which shares the
machine's cores with the server, weighs as little as possible on the figures.
"""

from __future__ import annotations

import asyncio
import gc
import math
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account

from vault.bench.shapes import Shape, checkout_of, serve
from vault.bench.stats import percentile_ms
from vault.demo.client import VaultApi, bearer, photo_files
from vault.demo.story import SampleData
from vault.errors import VaultError

Echo = Callable[[str], None]
CONCURRENCY = (1, 8, 32)
#: Parts each cell is measured in, interleaved with the other endpoint's (see _measure).
ROUNDS = 4
LAG_READERS = 8
#: The issue's targets, for the shape they are set on (PostgreSQL, two processes).
TARGET_P99_MS = 20.0
TARGET_RATIO = 0.7
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
}


class BenchMismatch(VaultError):
    """The two endpoints the bench compares did not answer the same bytes."""

    code = "bench_mismatch"


class RevokeNotEnforced(VaultError):
    """A read that started after the revoke's response was allowed."""

    code = "revoke_not_enforced"


@dataclass
class Cell:
    """One endpoint at one concurrency: latencies of successful requests, others counted."""

    label: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        return percentile_ms(self.latencies, q)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    request: bytes  # the raw HTTP/1.1 request, sent as is on a keep-alive connection

    @classmethod
    def get(cls, base_url: str, path: str, token: str | None = None) -> Target:
        url = httpx.URL(base_url)
        host, port = url.host, url.port or 80
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: */*"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        return cls(host, port, ("\r\n".join(lines) + "\r\n\r\n").encode())


@dataclass
class Read:
    started: float
    status: int
    elapsed: float = 0.0  # seconds from write to last byte


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One request/response on a keep-alive connection; the status code."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise ConnectionError("chunked responses are not supported by the bench client")
    await reader.readexactly(length)
    return status


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connect(target: Target, concurrency: int) -> list[Connection]:
    return list(
        await asyncio.gather(
            *(asyncio.open_connection(target.host, target.port) for _ in range(concurrency))
        )
    )


async def _load(
    target: Target,
    concurrency: int,
    *,
    requests: int,
    seconds: float,
    expect: int = 200,
    log: list[Read] | None = None,
    stop: asyncio.Event | None = None,
    connections: list[Connection] | None = None,
) -> Cell:
    """``concurrency`` clients, each on a keep-alive connection of its own: new ones
    (closed at the end), or ``connections`` (left open, for the next round)."""
    cell = Cell(label="", concurrency=concurrency)
    budget = [requests]
    deadline = time.perf_counter() + seconds
    kept = connections is not None
    if connections is None:
        connections = await _connect(target, concurrency)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while budget[0] > 0 and time.perf_counter() < deadline:
                if stop is not None and stop.is_set():
                    return
                budget[0] -= 1
                started = time.perf_counter()
                status = await _exchange(reader, writer, target.request)
                elapsed = time.perf_counter() - started
                if log is not None:
                    log.append(Read(started, status, elapsed))
                if status == expect:
                    cell.latencies.append(elapsed)
                else:
                    cell.failures += 1
        finally:
            if not kept:
                writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
    cell.elapsed = time.perf_counter() - began
    return cell


@dataclass
class Story:
    """What the setup made: who reads what, and how to revoke it."""

    handle: str
    patient_token: str
    provider_address: str
    provider_token: str
    read_path: str
    body_bytes: int
    unchecked_path: str


def _set_up(api: VaultApi, admin_token: str, sample: SampleData) -> Story:
    enrolled = api.enroll(sample.enroll_photos)
    handle = str(enrolled["handle"])
    patient = api.patient_session(handle, sample.probe_photo)
    record = api.json(
        "POST",
        "/patient/records",
        step="store an Observation",
        expect=(201,),
        token=patient,
        json=OBSERVATION,
    )
    provider_key = Account.from_key(secrets.token_bytes(32))
    api.register_provider(admin_token, provider_key.address)
    provider, _ = api.sign_in_provider(provider_key)
    request = api.request_access(
        provider, patient=handle, scope="Observation", purpose="TREAT", duration_seconds=3600
    )
    api.approve(patient, str(request["request_id"]), sample.probe_photo)
    read_path = f"/provider/patients/{handle}/records/{record['record_id']}?purpose=TREAT"
    body = api.call("GET", read_path, step="read once", token=provider).content
    unchecked_path = f"/bench/records/{handle}/{record['record_id']}"
    unchecked = api.call(
        "GET", unchecked_path, step="read the same record unchecked", token=admin_token
    ).content
    if unchecked != body:
        raise BenchMismatch("the unchecked read did not answer the enforced read's bytes")
    return Story(
        handle, patient, provider_key.address, provider, read_path, len(body), unchecked_path
    )


@dataclass
class LagResult:
    revoke_block: int
    head_block: int
    first_status: int
    first_after_ms: float
    after: int
    allowed_after: int
    allowed_in_flight: int

    @property
    def lag_blocks(self) -> int | None:
        """0 when the first read after the receipt was refused; None when it was allowed."""
        return self.head_block - self.revoke_block if self.first_status == 403 else None


async def _revoke_under_load(
    base_url: str, story: Story, probe: Path, *, seconds: float
) -> LagResult:
    target = Target.get(base_url, story.read_path, story.provider_token)
    log: list[Read] = []
    stop = asyncio.Event()
    readers = asyncio.create_task(
        _load(
            target,
            LAG_READERS,
            requests=10**9,
            seconds=seconds + 60,
            expect=200,
            log=log,
            stop=stop,
        )
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        await asyncio.sleep(min(0.5, seconds / 4))  # readers are allowed before the revoke
        sent = time.perf_counter()
        reply = await http.post(
            "/patient/consents/revoke",
            headers=bearer(story.patient_token),
            files=photo_files("photo", [probe]),
            data={"provider": story.provider_address, "scope": "Observation", "purpose": "TREAT"},
        )
        receipt = time.perf_counter()
        if reply.status_code != 200:
            stop.set()
            await readers
            raise RevokeNotEnforced(
                f"the revoke itself failed: HTTP {reply.status_code} {reply.text}"
            )
        head = (await http.get("/healthz")).json()["chain"]["block_number"]
        await asyncio.sleep(min(1.0, seconds / 2))
        stop.set()
        await readers
    after = sorted((r for r in log if r.started > receipt), key=lambda r: r.started)
    if not after:
        raise RevokeNotEnforced("no read started after the revoke's receipt; raise --seconds")
    return LagResult(
        revoke_block=int(reply.json()["block_number"]),
        head_block=int(head),
        first_status=after[0].status,
        first_after_ms=1000 * (after[0].started - receipt),
        after=len(after),
        allowed_after=sum(r.status == 200 for r in after),
        allowed_in_flight=sum(r.status == 200 and sent <= r.started <= receipt for r in log),
    )


@dataclass
class Row:
    """Both endpoints at one concurrency."""

    enforced: Cell
    unchecked: Cell

    @property
    def ratio(self) -> float:
        if not self.unchecked.throughput:
            return math.nan
        return self.enforced.throughput / self.unchecked.throughput


@dataclass
class ShapeResult:
    shape: Shape
    rows: list[Row]
    lag: LagResult
    body_bytes: int

    def at(self, concurrency: int) -> Row | None:
        return next((r for r in self.rows if r.enforced.concurrency == concurrency), None)


async def _measure(targets: tuple[Target, Target], *, requests: int, seconds: float) -> list[Row]:
    """Enforced and unchecked cells at each concurrency.

    Each cell is run in :data:`ROUNDS` parts, interleaved (enforced, unchecked, enforced,
    ...), so that something else slowing the machine for a moment (the two cores are
    shared with the load client, the chain node and the database) weighs on both
    endpoints alike instead of on whichever cell it happened to hit.
    """
    rows = []
    for concurrency in CONCURRENCY:
        cells = [Cell(label=label, concurrency=concurrency) for label in ("enforced", "unchecked")]
        # Each endpoint's clients keep their connections from the warm-up to the last
        # round, so no round pays for connecting (or counts it in its latencies).
        connections = [await _connect(target, concurrency) for target in targets]
        try:
            for target, kept in zip(targets, connections, strict=True):
                await _load(target, concurrency, requests=20, seconds=seconds, connections=kept)
            for _ in range(ROUNDS):
                for cell, target, kept in zip(cells, targets, connections, strict=True):
                    part = await _load(
                        target,
                        concurrency,
                        requests=max(1, requests // ROUNDS),
                        seconds=seconds / ROUNDS,
                        connections=kept,
                    )
                    cell.latencies += part.latencies
                    cell.failures += part.failures
                    cell.elapsed += part.elapsed
        finally:
            for kept in connections:
                for _reader, writer in kept:
                    writer.close()
        rows.append(Row(*cells))
    return rows


@contextmanager
def _collector_off() -> Iterator[None]:
    """This load client's own garbage collector, off while it measures (a full collection
    of its heap, which has much of the vault imported, stalled every request in flight
    and landed in whichever cell was running). What the measurement leaves is freed by
    reference counting."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def measure_shape(
    base_url: str, admin_token: str, sample: SampleData, *, requests: int, seconds: float
) -> tuple[list[Row], LagResult, int]:
    """Set up a story on a served vault, measure both endpoints, then the revoke."""
    with VaultApi(base_url) as api:
        api.health()
        story = _set_up(api, admin_token, sample)
    enforced = Target.get(base_url, story.read_path, story.provider_token)
    unchecked = Target.get(base_url, story.unchecked_path, admin_token)
    with _collector_off():
        rows = asyncio.run(_measure((enforced, unchecked), requests=requests, seconds=seconds))
        lag = asyncio.run(_revoke_under_load(base_url, story, sample.probe_photo, seconds=seconds))
    return rows, lag, story.body_bytes


def default_shapes(database_url: str | None, workers: list[int]) -> list[Shape]:
    """SQLite with one process; with a PostgreSQL server, each of ``workers`` processes."""
    shapes = [Shape("sqlite", 1)]
    if database_url is not None:
        shapes += [Shape("postgresql", n) for n in workers]
    return shapes


def run(
    *,
    project_root: Path,
    sample: SampleData,
    shapes: list[Shape],
    database_url: str | None,
    baseline_ref: str | None,
    requests: int,
    seconds: float,
    echo: Echo,
) -> list[ShapeResult]:
    """Serve and measure each shape (and ``baseline_ref``'s code on SQLite with one
    process), print the tables. Raises ``RevokeNotEnforced`` (after printing) when a read
    started after a revoke's response was allowed on any shape."""
    echo("vault bench api: each shape served fresh on loopback (its own data, chain, database)")
    echo(
        "enforced:  GET /provider/patients/{h}/records/{id}?purpose=TREAT (bearer token, "
        "account + record lookup, decrypt, chain head fetched after the read arrived and the "
        "consent decision for that block, audit entry committed before the response)"
    )
    echo(
        "unchecked: GET /bench/records/{h}/{id}, the same record and bytes read and decrypted "
        "from the store, none of the read's checks (the operator's token only)"
    )
    echo(
        f"each cell: at most {requests} requests or {seconds:g} s after a 20-request warm-up, "
        f"in {ROUNDS} rounds interleaved with the other endpoint's; one keep-alive "
        "connection per concurrent client"
    )
    results: list[ShapeResult] = []
    with _baseline(project_root, baseline_ref) as baseline:
        for shape in [*shapes, *baseline]:
            echo(f"\n== {shape.label}: starting ...")
            with serve(shape, project_root=project_root, database_url=database_url) as served:
                rows, lag, body = measure_shape(
                    served.base_url,
                    served.admin_token,
                    sample,
                    requests=requests,
                    seconds=seconds,
                )
            result = ShapeResult(shape, rows, lag, body)
            results.append(result)
            for line in _shape_lines(result):
                echo(line)
    for line in _summary_lines(results):
        echo(line)
    failed = [r for r in results if r.lag.lag_blocks != 0 or r.lag.allowed_after]
    if failed:
        raise RevokeNotEnforced(
            "reads started after the revoke's response were allowed on "
            + ", ".join(r.shape.label for r in failed)
        )
    return results


@contextmanager
def _baseline(project_root: Path, ref: str | None) -> Iterator[list[Shape]]:
    if ref is None:
        yield []
        return
    with checkout_of(project_root, ref) as where:
        yield [Shape("sqlite", 1, checkout=where, ref=ref[:7])]


def _columns(label: str) -> str:
    return f"{label:>{len(label)}} {'p50 ms':>7} {'p99 ms':>7} {'n':>6} {'err':>4}"


def _cell(cell: Cell, label: str) -> str:
    return (
        f"{cell.throughput:>{len(label)}.0f} {cell.percentile_ms(50):>7.2f} "
        f"{cell.percentile_ms(99):>7.2f} {len(cell.latencies):>6} {cell.failures:>4}"
    )


def _shape_lines(result: ShapeResult) -> list[str]:
    header = (
        f"{'conc':>4} | {_columns('enforced req/s')} | {_columns('unchecked req/s')} | "
        f"{'enforced/unchecked':>18}"
    )
    lines = [f"{result.shape.label}: {result.body_bytes} bytes per read", header]
    lines.append("-" * len(header))
    for row in result.rows:
        lines.append(
            f"{row.enforced.concurrency:>4} | {_cell(row.enforced, 'enforced req/s')} | "
            f"{_cell(row.unchecked, 'unchecked req/s')} | {row.ratio:>18.2f}"
        )
    return lines + _lag_lines(result.lag)


def _summary_lines(results: list[ShapeResult]) -> list[str]:
    lines = ["", "== summary at concurrency 32"]
    for result in results:
        row = result.at(32)
        if row is None:
            continue
        lag = result.lag.lag_blocks
        lines.append(
            f"  {result.shape.label:<24} enforced {row.enforced.throughput:6.0f} req/s, "
            f"p99 {row.enforced.percentile_ms(99):6.2f} ms, enforced/unchecked {row.ratio:4.2f}, "
            f"revoke-to-deny {'NOT ENFORCED' if lag is None else f'{lag} blocks'}"
        )
    target = next((r for r in results if r.shape == Shape("postgresql", 2)), None)
    if target is not None and (row := target.at(32)) is not None:
        p99, ratio = row.enforced.percentile_ms(99), row.ratio
        lines.append(
            f"  targets on postgresql x2: p99 <= {TARGET_P99_MS:g} ms: "
            f"{'met' if p99 <= TARGET_P99_MS else 'MISSED'} ({p99:.2f}); enforced/unchecked >= "
            f"{TARGET_RATIO:g}: {'met' if ratio >= TARGET_RATIO else 'MISSED'} ({ratio:.2f})"
        )
    current = next((r for r in results if r.shape == Shape("sqlite", 1)), None)
    older = next((r for r in results if r.shape.checkout is not None), None)
    if current is not None and older is not None:
        parts = []
        for concurrency in CONCURRENCY:
            now, then = current.at(concurrency), older.at(concurrency)
            if now and then and then.enforced.throughput:
                parts.append(
                    f"{concurrency}: {now.enforced.throughput / then.enforced.throughput:.2f}"
                )
        lines.append(
            f"  enforced read, this code / {older.shape.ref} (sqlite x1), throughput at "
            + ", ".join(parts)
        )
    return lines


def _lag_lines(lag: LagResult) -> list[str]:
    status = "refused (403)" if lag.first_status == 403 else f"ALLOWED ({lag.first_status})"
    shown = "not enforced" if lag.lag_blocks is None else f"{lag.lag_blocks} blocks"
    return [
        f"revoke-to-deny, under {LAG_READERS} concurrent readers: revoke mined in block "
        f"{lag.revoke_block}, chain head after the response {lag.head_block}; first read "
        f"started after the response ({lag.first_after_ms:.2f} ms later): {status}",
        f"  reads started after the response: {lag.after}, allowed: {lag.allowed_after}; "
        f"started while the revoke was in flight and allowed: {lag.allowed_in_flight} "
        f"(before its response: expected); lag: {shown}",
    ]
