"""``vault bench api``: the cost of enforcement, and the revoke-to-deny lag, over loopback.

Against a running vault started with ``VAULT_BENCH_ENDPOINTS=true``:

1. Setup through the API (as ``vault demo`` does): a patient enrolls, stores one
   Observation; the operator registers a fresh provider; it signs in, asks, the patient
   approves with a photo.
2. At concurrency 1, 8 and 32, the authorized provider read
   ``GET /provider/patients/{h}/records/{id}?purpose=TREAT`` (token, consent decision for
   the chain head fetched after the read arrived, decrypt, audit append committed) and
   ``GET /bench/bare?size=N`` (the same number of bytes through the same HTTP stack with
   no checks at all) and ``GET /bench/records/{h}/{id}`` (the same record, read and
   decrypted from the store, answered in the same bytes, with none of the read's checks),
   each for at most ``requests`` requests or ``seconds`` seconds.
3. With the vault's chain node known (``node_url``), the floor at concurrency 1
   (:mod:`vault.bench.floor`): the node's round trip and one audit commit, each measured
   alone, added to the bare request's time, and the highest ratio that leaves.
4. Under load (8 readers), the patient revokes; every read that *starts* after the
   revoke's response (which the vault sends after the receipt) must be refused. The lag is
   reported in blocks: the revoke's block and the chain head at the next read.

The load client is a minimal HTTP/1.1 keep-alive client on asyncio streams (one
connection per concurrent client) so that the client's own CPU, which shares the
machine's cores with the server, weighs as little as possible on both figures.
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

from vault.bench.floor import SAMPLES, WARM_UP, Floor, audit_commits, floor_lines, head_request
from vault.bench.stats import percentile_ms
from vault.demo.client import VaultApi, bearer, photo_files
from vault.demo.story import SampleData
from vault.errors import VaultError

Echo = Callable[[str], None]
CONCURRENCY = (1, 8, 32)
#: Parts each cell is measured in, interleaved with the other endpoints' (see _measure).
ROUNDS = 4
LAG_READERS = 8
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
}


class BenchEndpointsOff(VaultError):
    """The vault does not serve ``/bench/bare``: start it with ``VAULT_BENCH_ENDPOINTS=true``."""

    code = "bench_endpoints_off"


class BenchMismatch(VaultError):
    """Two endpoints the bench compares did not answer the same bytes."""

    code = "bench_mismatch"


class NodeUnreachable(VaultError):
    """The chain node named for the floor did not answer its head requests."""

    code = "node_unreachable"


class RevokeNotEnforced(VaultError):
    """A read that started after the revoke's receipt was allowed."""

    code = "revoke_not_enforced"


@dataclass
class Cell:
    """One endpoint at one concurrency: latencies of successful requests, others counted."""

    label: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0
    server_cpu: float = math.nan  # seconds of the vault process's CPU during the cell

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """The server's CPU per answered request (every request of the cell counts)."""
        answered = len(self.latencies) + self.failures
        return 1000 * self.server_cpu / answered if answered else math.nan

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
    probe = api.call(
        "GET", f"/bench/bare?size={len(body)}", step="reach the bare endpoint", expect=(200, 404)
    )
    if probe.status_code == 404:
        raise BenchEndpointsOff(
            "the vault does not serve /bench/bare: restart it with VAULT_BENCH_ENDPOINTS=true"
        )
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


#: Readers of the sustained run (``--sustain``), and the window its worst p99 is taken over.
SUSTAIN_READERS = 32
SUSTAIN_WINDOW_SECONDS = 0.5


@dataclass
class Sustained:
    """The enforced read held at :data:`SUSTAIN_READERS` for a while: the whole run's
    latency distribution, and its worst window."""

    seconds: float
    reads: list[Read]

    def percentile_ms(self, q: float) -> float:
        return percentile_ms((r.elapsed for r in self.reads if r.status == 200), q)

    def worst_window(self) -> tuple[float, float]:
        """(start in seconds, p99 in ms) of the window whose reads had the highest p99."""
        if not self.reads:
            return 0.0, math.nan
        first = min(r.started for r in self.reads)
        windows: dict[int, list[float]] = {}
        for r in self.reads:
            windows.setdefault(int((r.started - first) / SUSTAIN_WINDOW_SECONDS), []).append(
                r.elapsed
            )
        worst, p99 = 0, 0.0
        for index, elapsed in windows.items():
            value = percentile_ms(elapsed, 99)
            if value > p99:
                worst, p99 = index, value
        return worst * SUSTAIN_WINDOW_SECONDS, p99


async def _sustain(target: Target, seconds: float) -> Sustained:
    log: list[Read] = []
    await _load(target, SUSTAIN_READERS, requests=10**9, seconds=seconds, log=log)
    return Sustained(seconds, log)


def _sustained_lines(run: Sustained) -> list[str]:
    errors = sum(r.status != 200 for r in run.reads)
    at, worst = run.worst_window()
    return [
        "",
        f"sustained enforced read, {SUSTAIN_READERS} readers for {run.seconds:g} s (the "
        "server's own schedule, such as anchoring the audit log, runs meanwhile):",
        f"  reads {len(run.reads)} ({len(run.reads) / run.seconds:.0f}/s), errors {errors}; "
        f"p50 {run.percentile_ms(50):.2f} ms, p99 {run.percentile_ms(99):.2f} ms, "
        f"p99.9 {run.percentile_ms(99.9):.2f} ms, max {run.percentile_ms(100):.2f} ms",
        f"  slowest {SUSTAIN_WINDOW_SECONDS:g} s window: p99 {worst:.2f} ms, {at:g} s in",
    ]


def run(
    *,
    base_url: str,
    admin_token: str,
    sample: SampleData,
    requests: int,
    seconds: float,
    echo: Echo,
    sustain: float = 0.0,
    node_url: str | None = None,
) -> None:
    """Set up, measure, print. Raises ``RevokeNotEnforced`` (after printing) if the lag is not 0.

    ``sustain`` > 0 also holds the enforced read at concurrency 32 that many seconds
    (before the revoke): long enough, it shows what the server's periodic work (audit
    anchoring, every 60 s by default) does to the tail, which no short cell sees.

    ``node_url`` (the vault's chain node) adds the floor at concurrency 1
    (:mod:`vault.bench.floor`): the node's round trip and one audit commit, each measured
    alone, after the cells.
    """
    if node_url is not None:
        head_request(node_url)  # a malformed URL is refused before anything is measured
    with VaultApi(base_url) as api:
        api.health()
        echo(f"vault bench api: {api.base_url} over loopback")
        echo(
            "setup: enroll a patient, store an Observation, register a provider, sign in, "
            "request, approve ..."
        )
        story = _set_up(api, admin_token, sample)
        enforced = Target.get(base_url, story.read_path, story.provider_token)
        bare = Target.get(base_url, f"/bench/bare?size={story.body_bytes}")
        unchecked = Target.get(base_url, story.unchecked_path, admin_token)
        echo(
            f"enforced: GET /provider/patients/{{h}}/records/{{id}}?purpose=TREAT, "
            f"{story.body_bytes} bytes (bearer token, account + record lookup, decrypt, "
            "chain head fetched after the read arrived and the consent decision for that block, "
            "audit entry committed before the response)"
        )
        echo(
            f"bare:     GET /bench/bare?size={story.body_bytes}, the same number of bytes through "
            "the same HTTP stack, no token, database, chain or crypto"
        )
        echo(
            "unchecked: GET /bench/records/{h}/{id}, the same record and bytes read and "
            "decrypted from the store (account + record lookup, decrypt), with none of the "
            "read's checks: no provider token, chain or audit (the operator's token only)"
        )
        echo(
            f"each cell: at most {requests} requests or {seconds:g} s, after a 20-request "
            f"warm-up, in {ROUNDS} rounds interleaved with the other endpoints' cells; one "
            "keep-alive connection per concurrent client"
        )
        with _collector_off():
            cells = asyncio.run(
                _measure(
                    (enforced, bare, unchecked), ServerCpu(api), requests=requests, seconds=seconds
                )
            )
            for line in _table(cells):
                echo(line)
            if node_url is not None:
                for line in _floor_lines(node_url, cells[0], seconds=seconds):
                    echo(line)
            if sustain > 0:
                held = asyncio.run(_sustain(enforced, sustain))
                for line in _sustained_lines(held):
                    echo(line)
            lag = asyncio.run(
                _revoke_under_load(base_url, story, sample.probe_photo, seconds=seconds)
            )
    for line in _lag_lines(lag):
        echo(line)
    if lag.lag_blocks != 0 or lag.allowed_after:
        raise RevokeNotEnforced(
            f"{lag.allowed_after} reads started after the revoke's receipt were allowed"
        )


def _floor_lines(node_url: str, alone: Row, *, seconds: float) -> list[str]:
    """The floor beside the cells at concurrency 1, or why it could not be measured (the
    floor explains the figures; it is not one of them, so it never fails the run)."""
    if not (alone.bare.throughput and alone.enforced.throughput):
        return ["", "floor at concurrency 1: not measured (a cell answered no request)"]
    try:
        floor = _floor(node_url, samples=SAMPLES, seconds=seconds)
    except NodeUnreachable as exc:
        return ["", f"floor at concurrency 1: not measured ({exc.message})"]
    return floor_lines(
        floor,
        bare_ms=1000 / alone.bare.throughput,
        enforced_ms=1000 / alone.enforced.throughput,
    )


def _floor(node_url: str, *, samples: int, seconds: float) -> Floor:
    """Both parts of the floor, one after the other (each measured alone)."""
    host, port, request = head_request(node_url)
    node = Target(host, port, request)
    try:
        asyncio.run(_load(node, 1, requests=WARM_UP, seconds=seconds))
        trips = asyncio.run(_load(node, 1, requests=samples, seconds=seconds))
    except (OSError, ValueError, IndexError) as exc:  # refused, closed, not HTTP
        raise NodeUnreachable(f"the chain node at {node_url} did not answer: {exc}") from exc
    if trips.failures or not trips.latencies:
        raise NodeUnreachable(
            f"the chain node at {node_url} failed {trips.failures} of "
            f"{trips.failures + len(trips.latencies)} head requests"
        )
    commits = audit_commits(samples=samples, seconds=seconds)
    return Floor(
        node_round_trip_ms=percentile_ms(trips.latencies, 50),
        audit_commit_ms=percentile_ms(commits, 50),
        round_trips=len(trips.latencies),
        commits=len(commits),
    )


@contextmanager
def _collector_off() -> Iterator[None]:
    """This load client's own garbage collector, off while it measures.

    The client has much of the vault imported (web3, FHIR models), and a full collection
    walked all of it: in one run, four of them, up to 113 ms each, every request in flight
    stalled and counted in whichever cell was running. The heap built so far is frozen
    and collection is off until the measurement ends; what the measurement itself leaves
    is freed by reference counting (a load client builds no cycles worth collecting).
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


class ServerCpu:
    """The vault's own CPU meter (``GET /bench/cpu``), read between cells."""

    def __init__(self, api: VaultApi) -> None:
        self._api = api

    def seconds(self) -> float:
        reply = self._api.call(
            "GET", "/bench/cpu", step="read the vault's CPU meter", expect=(200, 404)
        )
        if reply.status_code == 404:
            raise BenchEndpointsOff(
                "the vault does not serve /bench/cpu: restart it with VAULT_BENCH_ENDPOINTS=true"
            )
        return float(reply.json()["process_cpu_seconds"])


@dataclass
class Row:
    """The three endpoints at one concurrency."""

    enforced: Cell
    bare: Cell
    unchecked: Cell


async def _measure(
    targets: tuple[Target, Target, Target], meter: ServerCpu, *, requests: int, seconds: float
) -> list[Row]:
    """Enforced, bare and unchecked cells at each concurrency.

    Each cell is run in :data:`ROUNDS` parts, interleaved (enforced, bare, unchecked,
    enforced, ...), so that something else slowing the machine for a moment (the two
    cores are shared with the load client, the chain node and whatever else runs) weighs
    on all three endpoints alike instead of on whichever cell it happened to hit.
    """
    labels = ("enforced", "bare", "unchecked")
    rows = []
    for concurrency in CONCURRENCY:
        cells = [Cell(label=label, concurrency=concurrency, server_cpu=0.0) for label in labels]
        # Each endpoint's clients keep their connections from the warm-up to the last
        # round, so no round pays for connecting (or counts it in its latencies).
        connections = [await _connect(target, concurrency) for target in targets]
        try:
            for target, kept in zip(targets, connections, strict=True):
                await _load(target, concurrency, requests=20, seconds=seconds, connections=kept)
            for _ in range(ROUNDS):
                for cell, target, kept in zip(cells, targets, connections, strict=True):
                    before = meter.seconds()
                    part = await _load(
                        target,
                        concurrency,
                        requests=max(1, requests // ROUNDS),
                        seconds=seconds / ROUNDS,
                        connections=kept,
                    )
                    # The meter's own two requests are in the figure too: a few hundred µs.
                    cell.server_cpu += meter.seconds() - before
                    cell.latencies += part.latencies
                    cell.failures += part.failures
                    cell.elapsed += part.elapsed
        finally:
            for kept in connections:
                for _reader, writer in kept:
                    writer.close()
        rows.append(Row(*cells))
    return rows


def _ratio(cell: Cell, baseline: Cell) -> float:
    return cell.throughput / baseline.throughput if baseline.throughput else math.nan


def _columns(label: str) -> str:
    """The header of :func:`_cell`'s columns; ``label`` names the throughput column."""
    return f"{label:>{len(label)}} {'p50 ms':>7} {'p99 ms':>7} {'n':>6} {'err':>4}"


def _cell(cell: Cell, label: str) -> str:
    """Throughput, p50, p99, answered and failed requests, under :func:`_columns`."""
    return (
        f"{cell.throughput:>{len(label)}.0f} {cell.percentile_ms(50):>7.2f} "
        f"{cell.percentile_ms(99):>7.2f} {len(cell.latencies):>6} {cell.failures:>4}"
    )


def _table(rows: list[Row]) -> list[str]:
    header = (
        f"{'conc':>4} | {_columns('enforced req/s')} | {_columns('bare req/s')} | "
        f"{'enforced/bare':>13}"
    )
    lines = ["", header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.enforced.concurrency:>4} | {_cell(row.enforced, 'enforced req/s')} | "
            f"{_cell(row.bare, 'bare req/s')} | {_ratio(row.enforced, row.bare):>13.2f}"
        )
    lines.append("enforced/bare = throughput ratio (1.0: enforcement is free; target >= 0.5)")
    lines.append("")
    header = f"{'conc':>4} | {_columns('unchecked req/s')} | {'enforced/unchecked':>18}"
    lines += [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.unchecked.concurrency:>4} | {_cell(row.unchecked, 'unchecked req/s')} | "
            f"{_ratio(row.enforced, row.unchecked):>18.2f}"
        )
    lines.append(
        "enforced/unchecked = the same bytes with and without the read's checks "
        "(provider token, chain head and consent decision, audit commit)"
    )
    lines.append("")
    lines.append(
        "server CPU per request (ms; the vault process, all threads, from GET /bench/cpu):"
    )
    for row in rows:
        enforced, bare, unchecked = row.enforced, row.bare, row.unchecked
        extra = enforced.cpu_ms_per_request - bare.cpu_ms_per_request
        checks = enforced.cpu_ms_per_request - unchecked.cpu_ms_per_request
        lines.append(
            f"{enforced.concurrency:>4} | enforced {enforced.cpu_ms_per_request:6.3f} | "
            f"bare {bare.cpu_ms_per_request:6.3f} | enforcement adds {extra:6.3f} | "
            f"unchecked {unchecked.cpu_ms_per_request:6.3f} | checks add {checks:6.3f}"
        )
    return lines


def _lag_lines(lag: LagResult) -> list[str]:
    status = "refused (403)" if lag.first_status == 403 else f"ALLOWED ({lag.first_status})"
    shown = "not enforced" if lag.lag_blocks is None else f"{lag.lag_blocks} blocks"
    return [
        "",
        f"revoke-to-deny lag, under {LAG_READERS} concurrent readers:",
        f"  revoke mined in block {lag.revoke_block}; chain head after the response: "
        f"block {lag.head_block}",
        f"  first read started after the response ({lag.first_after_ms:.2f} ms later): {status}",
        f"  reads started after the response: {lag.after}, allowed: {lag.allowed_after}",
        f"  reads started while the revoke was in flight and allowed: {lag.allowed_in_flight} "
        "(before its receipt: expected)",
        f"  lag: {shown}",
    ]
