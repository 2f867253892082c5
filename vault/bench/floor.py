"""The least an enforced read can cost at concurrency 1, from what DESIGN 6 and 7 require.

Every enforced read waits, in this order, for

* the node's answer to a head request sent after the read arrived (property 6: a revoke is
  enforced from the first read after its receipt, so no earlier answer will do), and then
* the commit of its audit entry (property 7), which names the decision that answer led to
  and must be durable before the first byte of the record leaves;

and it makes the same HTTP exchange the bare endpoint makes. The store reads can overlap
the round trip, so they are left out. With one client nothing is shared between reads, so
each read takes at least

    bare request + node round trip + one audit commit

and the throughput ratio against the bare endpoint at concurrency 1 is at most
``bare / (bare + round trip + commit)``. The two added parts are measured here, each on its
own and hot (a tight loop in the bench's process, nothing else running in it), which makes
them lower bounds of what they cost inside a server that is also doing everything else:

* the round trip: ``eth_getBlockByNumber("latest")`` to the vault's node over one
  kept-alive connection, with the same HTTP client as the benchmark's cells;
* the commit: one entry appended and committed through the vault's own :class:`AuditLog`
  on the event loop, as the read path does, on a scratch SQLite file (the embedded
  default) created for the measurement and deleted after it.

The floor answers what the ratio alone cannot: how much of a read's cost the design
imposes, and how much is the implementation's. (The round trip is measured by
:mod:`vault.bench.api`, whose load client it uses.)
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vault.audit.log import AuditEvent, AuditLog
from vault.errors import InvalidInput
from vault.store.database import make_engine, make_session_factory
from vault.store.migrate import upgrade

#: Most samples of each part of the floor, and the calls made before them to warm up.
SAMPLES = 500
WARM_UP = 20

_HEAD_REQUEST = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "eth_getBlockByNumber",
    "params": ["latest", False],
}
#: The entry a provider read appends (the field lengths of a real one).
_READ_EVENT = AuditEvent(
    patient_id="pat_" + "0" * 24,
    actor="0x" + "ab" * 20,
    action="read",
    outcome="allowed",
    scope="Observation",
    purpose="TREAT",
    record_id="00000000-0000-4000-8000-000000000000",
)


@dataclass(frozen=True)
class Floor:
    """Medians, in milliseconds, of the parts every enforced read adds to a bare request."""

    node_round_trip_ms: float
    audit_commit_ms: float
    round_trips: int
    commits: int

    def read_ms(self, bare_ms: float) -> float:
        """The least an enforced read can take, given what the bare request takes."""
        return bare_ms + self.node_round_trip_ms + self.audit_commit_ms

    def ceiling(self, bare_ms: float) -> float:
        """The highest enforced/bare throughput ratio one client can see."""
        return bare_ms / self.read_ms(bare_ms)


def head_request(node_url: str) -> tuple[str, int, bytes]:
    """Host, port and the raw HTTP/1.1 request of one head fetch to ``node_url``.

    Raises :class:`InvalidInput` if ``node_url`` is not an http(s) URL with a host."""
    try:
        url = httpx.URL(node_url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"not a node URL: {node_url!r} ({exc})") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInput(f"not an http(s) node URL: {node_url!r}")
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    body = json.dumps(_HEAD_REQUEST).encode()
    head = (
        f"POST {url.raw_path.decode() or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


async def _commits(log: AuditLog, *, samples: int, seconds: float) -> list[float]:
    for _ in range(WARM_UP):
        await log.append_async(_READ_EVENT)
    took: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(took) < samples and time.perf_counter() < deadline:
        started = time.perf_counter()
        await log.append_async(_READ_EVENT)
        took.append(time.perf_counter() - started)
    return took


def audit_commits(*, samples: int, seconds: float) -> list[float]:
    """Seconds per single-entry append (chained, inserted, committed), on the event loop
    through :class:`AuditLog`, on a scratch SQLite file."""
    with tempfile.TemporaryDirectory(prefix="vault-bench-floor-") as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'audit.db'}")
        try:
            upgrade(engine)
            log = AuditLog(session_factory=make_session_factory(engine), commit_on_loop=True)
            try:
                return asyncio.run(_commits(log, samples=samples, seconds=seconds))
            finally:
                log.close()
        finally:
            engine.dispose()


def floor_lines(floor: Floor, *, bare_ms: float, enforced_ms: float) -> list[str]:
    """The floor beside what the enforced read took at concurrency 1 (1 / its throughput)."""
    least = floor.read_ms(bare_ms)
    return [
        "",
        "floor at concurrency 1: what DESIGN 6 and 7 add to every read, each part measured "
        "alone and hot here (medians):",
        f"  bare request (1 / its throughput)    {bare_ms:6.3f} ms",
        f"  + head round trip to the node        {floor.node_round_trip_ms:6.3f} ms "
        f"({floor.round_trips} eth_getBlockByNumber, one kept-alive connection)",
        f"  + one audit entry committed          {floor.audit_commit_ms:6.3f} ms "
        f"({floor.commits} appends through AuditLog, scratch SQLite file)",
        f"  = at least                           {least:6.3f} ms per enforced read: "
        f"enforced/bare can reach at most {floor.ceiling(bare_ms):.2f} at concurrency 1",
        f"  the enforced read took               {enforced_ms:6.3f} ms: {enforced_ms - least:.3f} "
        "ms above the floor (token, store reads, decryption, the Python around them, and the "
        "parts themselves costing more in a busy server than alone)",
    ]
