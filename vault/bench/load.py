"""``vault bench load``: a bounded load test over loopback, then a consistency check.

Against one or more running vault processes (``--url`` repeated: requests are spread
round-robin, so with two processes sharing one database and one chain every patient and
provider talks to both):

1. Setup: ``patients`` patients enroll (the same sample face: matching costs ~0.2 s of
   CPU per photo, so face operations are kept few) and open a session; ``providers``
   providers are registered by the operator and sign in with Ethereum.
2. Load, for ``seconds``: worker threads upload Observations and read them back (the
   patient), and read them as providers (consent checked on chain, audited); one consent
   thread walks every (patient, provider) pair through request -> approve (fresh photo,
   relayed grant) and revokes every other granted pair (fresh photo, relayed revoke).
3. Check, on every URL: every acknowledged upload is readable with its content; every
   revoked consent is refused (403) and every standing one allowed (200) by *each*
   process; each patient's access log holds exactly one provider-read entry per
   decision a provider received (none lost, none duplicated), and one entry per
   acknowledged grant and revoke.

Reports throughput, error counts by code and p50/p99 latency per operation.
"""

from __future__ import annotations

import itertools
import math
import random
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from vault.bench.stats import percentile_ms
from vault.demo.client import VaultApi, bearer, photo_files
from vault.demo.story import SampleData
from vault.errors import VaultError

Echo = Callable[[str], None]
WORKERS = 6
#: The share of worker operations that are uploads, patient reads and provider reads.
MIX = (("upload", 0.4), ("patient_read", 0.2), ("provider_read", 0.4))


class LoadInconsistent(VaultError):
    """The consistency check after the load found a lost write or a wrong consent answer."""

    code = "load_inconsistent"


@dataclass
class Pair:
    patient: int
    provider: int
    state: str = "none"  # none -> requested -> granted -> revoked
    request_id: str = ""


@dataclass
class Ledger:
    """Everything the vault acknowledged, and every latency and error seen."""

    records: dict[int, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    decisions: Counter[int] = field(default_factory=Counter)  # provider reads per patient
    consent_ops: Counter[tuple[int, str]] = field(default_factory=Counter)  # grants/revokes
    live_violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, op: str, seconds: float) -> None:
        with self.lock:
            self.latencies[op].append(seconds)

    def error(self, op: str, code: str) -> None:
        with self.lock:
            self.errors[(op, code)] += 1


@dataclass
class Cast:
    patients: list[tuple[str, str]]  # (handle, session token)
    providers: list[tuple[LocalAccount, str]]  # (key, session token)


def _code(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return f"http_{reply.status_code}"
    code = body.get("code") if isinstance(body, dict) else None
    return str(code) if code else f"http_{reply.status_code}"


def _observation(marker: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": f"load {marker}"},
        "valueQuantity": {"value": 60 + len(marker), "unit": "beats/minute"},
    }


class Clients:
    """One keep-alive httpx client per URL for the calling thread; round-robin over URLs."""

    def __init__(self, urls: list[str]) -> None:
        self._local = threading.local()
        self._urls = urls

    def next(self) -> httpx.Client:
        local = self._local
        if not hasattr(local, "clients"):
            local.clients = [httpx.Client(base_url=u, timeout=120) for u in self._urls]
            local.cycle = itertools.cycle(local.clients)
        client: httpx.Client = next(local.cycle)
        return client

    def every(self) -> list[httpx.Client]:
        self.next()
        clients: list[httpx.Client] = self._local.clients
        return clients


def _timed(
    ledger: Ledger,
    op: str,
    expect: tuple[int, ...],
    http: httpx.Client,
    method: str,
    path: str,
    **kwargs: Any,
) -> httpx.Response | None:
    """One request; its latency if the status is expected, else its error code."""
    started = time.perf_counter()
    try:
        reply = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        ledger.error(op, type(exc).__name__)
        return None
    if reply.status_code in expect:
        ledger.ok(op, time.perf_counter() - started)
        return reply
    ledger.error(op, _code(reply))
    return None


def _set_up(
    urls: list[str], admin: str, sample: SampleData, patients: int, providers: int, ledger: Ledger
) -> Cast:
    cast = Cast([], [])
    apis = [VaultApi(u) for u in urls]
    try:
        for n in range(patients):
            api = apis[n % len(apis)]
            started = time.perf_counter()
            handle = str(api.enroll(sample.enroll_photos)["handle"])
            ledger.ok("enroll", time.perf_counter() - started)
            cast.patients.append((handle, api.patient_session(handle, sample.probe_photo)))
        for n in range(providers):
            api = apis[n % len(apis)]
            key: LocalAccount = Account.from_key(secrets.token_bytes(32))
            api.register_provider(admin, key.address)
            cast.providers.append((key, api.sign_in_provider(key)[0]))
    finally:
        for api in apis:
            api.close()
    return cast


def _worker(
    clients: Clients,
    cast: Cast,
    pairs: list[Pair],
    ledger: Ledger,
    rng: random.Random,
    deadline: float,
) -> None:
    ops: Sequence[str] = [op for op, _ in MIX]
    weights: Sequence[float] = [w for _, w in MIX]
    while time.monotonic() < deadline:
        op = rng.choices(ops, weights)[0]
        http = clients.next()
        p = rng.randrange(len(cast.patients))
        handle, token = cast.patients[p]
        with ledger.lock:
            known = list(ledger.records[p].items())
        if op == "upload" or not known:
            marker = secrets.token_hex(8)
            reply = _timed(
                ledger,
                "upload",
                (201,),
                http,
                "POST",
                "/patient/records",
                json=_observation(marker),
                headers=bearer(token),
            )
            if reply is not None:
                with ledger.lock:
                    ledger.records[p][reply.json()["record_id"]] = marker
            continue
        record_id, _ = rng.choice(known)
        if op == "patient_read":
            _timed(
                ledger,
                "patient_read",
                (200,),
                http,
                "GET",
                f"/patient/records/{record_id}",
                headers=bearer(token),
            )
            continue
        candidates = [x for x in pairs if x.patient == p and x.state in ("granted", "revoked")]
        if not candidates:
            continue
        pair = rng.choice(candidates)
        state_before = pair.state
        _, provider_token = cast.providers[pair.provider]
        url = f"/provider/patients/{handle}/records/{record_id}?purpose=TREAT"
        reply = _timed(
            ledger, "provider_read", (200, 403), http, "GET", url, headers=bearer(provider_token)
        )
        if reply is None:
            continue
        with ledger.lock:
            ledger.decisions[p] += 1
        # A read that started after the revoke was acknowledged must be refused.
        if state_before == "revoked" and reply.status_code != 403:
            with ledger.lock:
                ledger.live_violations.append(f"revoked consent allowed a read: {url}")


def _consent_walker(
    clients: Clients,
    cast: Cast,
    pairs: list[Pair],
    ledger: Ledger,
    sample: SampleData,
    deadline: float,
) -> None:
    probe = sample.probe_photo
    for n, pair in enumerate(pairs):
        if time.monotonic() >= deadline:
            return
        handle, patient_token = cast.patients[pair.patient]
        key, provider_token = cast.providers[pair.provider]
        http = clients.next()
        asked = _timed(
            ledger,
            "request",
            (201,),
            http,
            "POST",
            "/provider/requests",
            json={
                "patient": handle,
                "scope": "Observation",
                "purpose": "TREAT",
                "duration_seconds": 3600,
            },
            headers=bearer(provider_token),
        )
        if asked is None:
            continue
        pair.request_id, pair.state = str(asked.json()["request_id"]), "requested"
        http = clients.next()
        approved = _timed(
            ledger,
            "approve",
            (200,),
            http,
            "POST",
            f"/patient/requests/{pair.request_id}/approve",
            files=photo_files("photo", [probe]),
            headers=bearer(patient_token),
        )
        if approved is None:
            continue
        pair.state = "granted"
        with ledger.lock:
            ledger.consent_ops[(pair.patient, "grant")] += 1
        if n % 2 == 1 and time.monotonic() < deadline:
            http = clients.next()
            revoked = _timed(
                ledger,
                "revoke",
                (200,),
                http,
                "POST",
                "/patient/consents/revoke",
                files=photo_files("photo", [probe]),
                data={"provider": key.address, "scope": "Observation", "purpose": "TREAT"},
                headers=bearer(patient_token),
            )
            if revoked is not None:
                pair.state = "revoked"
                with ledger.lock:
                    ledger.consent_ops[(pair.patient, "revoke")] += 1


@dataclass
class CheckResult:
    records_checked: int = 0
    consent_answers: int = 0
    audit_entries: int = 0
    problems: list[str] = field(default_factory=list)


def _check(clients: Clients, cast: Cast, pairs: list[Pair], ledger: Ledger) -> CheckResult:
    result = CheckResult()
    every = clients.every()
    for p, records in ledger.records.items():
        handle, token = cast.patients[p]
        for record_id, marker in records.items():
            for http in every:
                reply = http.get(f"/patient/records/{record_id}", headers=bearer(token))
                result.records_checked += 1
                if reply.status_code != 200:
                    result.problems.append(
                        f"acknowledged record {record_id} unreadable "
                        f"({reply.status_code}) at {http.base_url}"
                    )
                elif reply.json()["resource"]["code"]["text"] != f"load {marker}":
                    result.problems.append(f"record {record_id} has the wrong content")
    for pair in pairs:
        if pair.state not in ("granted", "revoked") or not ledger.records[pair.patient]:
            continue
        handle, _ = cast.patients[pair.patient]
        _, provider_token = cast.providers[pair.provider]
        record_id = next(iter(ledger.records[pair.patient]))
        url = f"/provider/patients/{handle}/records/{record_id}?purpose=TREAT"
        want = 200 if pair.state == "granted" else 403
        for http in every:
            got = http.get(url, headers=bearer(provider_token)).status_code
            result.consent_answers += 1
            ledger.decisions[pair.patient] += 1
            if got != want:
                result.problems.append(f"{pair.state} consent answered {got} at {http.base_url}")
    for p, (_, token) in enumerate(cast.patients):
        reply = every[p % len(every)].get("/patient/access-log", headers=bearer(token))
        if reply.status_code != 200:
            result.problems.append(f"access log of patient {p}: HTTP {reply.status_code}")
            continue
        entries = [item["entry"] for item in reply.json()["entries"]]
        result.audit_entries += len(entries)
        seqs = [e["seq"] for e in entries]
        if len(seqs) != len(set(seqs)):
            result.problems.append(f"patient {p}: duplicated audit sequence numbers")
        # Decisions a provider received: allowed, or refused for want of consent (a 503
        # is audited too, but the client did not count it as an answer).
        reads = sum(
            e["action"] in ("read", "emergency_read")
            and e["actor"] != "patient"
            and (e["outcome"] == "allowed" or e["reason"] == "no_consent")
            for e in entries
        )
        counted = {
            "provider reads": (reads, ledger.decisions[p]),
            "grants": (
                sum(e["action"] == "grant" for e in entries),
                ledger.consent_ops[(p, "grant")],
            ),
            "revokes": (
                sum(e["action"] == "revoke" for e in entries),
                ledger.consent_ops[(p, "revoke")],
            ),
        }
        for what, (logged, acknowledged) in counted.items():
            if logged != acknowledged:
                result.problems.append(
                    f"patient {p}: {logged} {what} in the audit log, {acknowledged} answered"
                )
    return result


def run(
    *,
    urls: list[str],
    admin_token: str,
    sample: SampleData,
    seconds: float,
    patients: int,
    providers: int,
    echo: Echo,
    workers: int = WORKERS,
    seed: int = 1,
) -> CheckResult:
    """Set up, load, check, print. Raises :class:`LoadInconsistent` (after printing)."""
    ledger = Ledger()
    for url in urls:
        with VaultApi(url) as api:
            api.health()
    echo(f"vault bench load: {len(urls)} process(es): {', '.join(urls)}")
    echo(f"setup: {patients} patients enroll, {providers} providers register and sign in ...")
    cast = _set_up(urls, admin_token, sample, patients, providers, ledger)
    pairs = [Pair(p, q) for q in range(providers) for p in range(patients)]
    random.Random(seed).shuffle(pairs)  # noqa: S311 (a workload, not a secret)
    clients = Clients(urls)
    echo(
        f"load: {workers} workers (uploads, patient reads, provider reads) + 1 consent "
        f"thread (request, approve, revoke every other) for {seconds:g} s ..."
    )
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=_worker,
            args=(clients, cast, pairs, ledger, random.Random(seed + i), deadline),  # noqa: S311
        )
        for i in range(workers)
    ]
    threads.append(
        threading.Thread(
            target=_consent_walker, args=(clients, cast, pairs, ledger, sample, deadline)
        )
    )
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    echo(
        "check: every acknowledged record on every process, every consent on every "
        "process, audit entries per patient ..."
    )
    result = _check(clients, cast, pairs, ledger)
    result.problems[:0] = ledger.live_violations
    for line in _report(ledger, elapsed, result, pairs):
        echo(line)
    if result.problems:
        for problem in result.problems[:20]:
            echo(f"  PROBLEM: {problem}")
        raise LoadInconsistent(f"{len(result.problems)} consistency problems")
    return result


def _report(ledger: Ledger, elapsed: float, result: CheckResult, pairs: list[Pair]) -> list[str]:
    ops = ["enroll", "upload", "patient_read", "provider_read", "request", "approve", "revoke"]
    header = f"{'operation':<14} {'ok':>7} {'errors':>6} {'ok/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    lines = ["", header, "-" * len(header)]
    total = 0
    for op in ops:
        lat = ledger.latencies.get(op, [])
        errors = sum(n for (o, _), n in ledger.errors.items() if o == op)
        total += len(lat) if op != "enroll" else 0
        rate = len(lat) / elapsed if op != "enroll" and elapsed else math.nan
        lines.append(
            f"{op:<14} {len(lat):>7} {errors:>6} {rate:>8.1f} "
            f"{percentile_ms(lat, 50):>8.1f} {percentile_ms(lat, 99):>8.1f}"
        )
    lines.append(
        f"load phase: {elapsed:.1f} s, {total} acknowledged operations, {total / elapsed:.1f} op/s"
        if elapsed
        else "load phase: 0 s"
    )
    codes = Counter({f"{op}:{code}": n for (op, code), n in ledger.errors.items()})
    lines.append(
        "errors by code: " + (", ".join(f"{k} {v}" for k, v in codes.most_common()) or "none")
    )
    states = Counter(p.state for p in pairs)
    lines.append("consent pairs: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    lines.append(
        f"consistency: {result.records_checked} record reads, {result.consent_answers} consent "
        f"answers, {result.audit_entries} audit entries checked; "
        f"{len(result.problems)} problems"
    )
    return lines
