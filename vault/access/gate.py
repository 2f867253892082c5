"""The consent decision on every provider read, and its audit entry.

The chain is the source of truth. Every decision is taken against a block the node
reported *after the read arrived* (:class:`~vault.chain.head.HeadWatch`), so a revoke is
enforced from the first read after its receipt:

* the decision for (patient, provider, scope, purpose) is cached *for that block only*,
  keyed by the block's hash: any new block (a revoke, a provider deactivated, a new
  emergency role, a chain reset) changes the hash and every cached decision is dropped
  before it can be used again. No event subscription is trusted to arrive in time; the
  head check on each read is what makes the cache unable to outlive a revocation;
* time still passes within one block: a decision is cached only when the contract gives
  the same answer now and ``cache_seconds`` ahead (two ``eth_call``s pinned to the block),
  and is reused only within that span. Windows only close as time passes, so equal ends
  mean the same answer throughout (see ``ConsentRegistryClient.access_basis_span``).

With ``cache_seconds`` 0 (or no head watch) each decision is one ``eth_call`` at latest.
A chain that cannot answer means *no* (the read is refused with ``ChainUnavailable``,
503), and the refusal is audited too. Every decision is appended to the access log before
any data is returned; if the log cannot be written, the read is refused.

The cache is process-local but holds nothing another process could contradict: every
entry is checked against the chain's head on every read.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vault.access.accounts import PatientAccount
from vault.access.scopes import purpose_id, scope_id
from vault.audit.log import AuditEvent, AuditLog
from vault.chain.head import AsyncHeadWatch, HeadOutcome, HeadWatch, block_of
from vault.chain.registry import AccessBasis, BlockRef, ConsentRegistryClient
from vault.errors import AccessDenied, ChainUnavailable, VaultError


@dataclass(frozen=True)
class ReadDecision:
    basis: AccessBasis
    scope: str


#: Decisions kept for one block at most; beyond this many, the oldest block's are dropped.
MAX_CACHED_DECISIONS = 100_000

_Terms = tuple[bytes, str, bytes, bytes]


@dataclass(frozen=True)
class _Cached:
    basis: AccessBasis
    start: int  # unix seconds: the answer holds from here ...
    end: int  # ... to here, in the block it was cached for


class ConsentGate:
    def __init__(
        self,
        *,
        registry: ConsentRegistryClient,
        audit: AuditLog,
        latest_block: Callable[[], BlockRef] | None = None,
        latest_block_async: Callable[[], Awaitable[BlockRef]] | None = None,
        cache_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``latest_block`` asks the node for its head (threads and coroutines each share
        fetches through their own watch; coroutines use ``latest_block_async`` when given,
        else ``latest_block`` in the loop's executor); without it, or with
        ``cache_seconds`` 0, every decision is one ``eth_call`` at latest."""
        self._registry = registry
        self._audit = audit
        fetch = latest_block if cache_seconds > 0 else None
        self._head = HeadWatch(fetch) if fetch is not None else None
        self._async_head = (
            AsyncHeadWatch(latest_block_async or _in_executor(fetch)) if fetch is not None else None
        )
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._block_hash = ""
        self._decisions: dict[_Terms, _Cached] = {}
        # Decisions under way on an event loop, by (loop, terms, block hash, second).
        self._deciding: dict[
            tuple[asyncio.AbstractEventLoop, _Terms, str, int], asyncio.Future[AccessBasis]
        ] = {}

    def basis(
        self, account: PatientAccount, provider: str, category: str, purpose: str
    ) -> AccessBasis:
        """The chain's answer for reading ``category`` now (the contract also honours a
        consent or emergency window for all data)."""
        terms = _terms(account, provider, category, purpose)
        if self._head is None:
            return self._registry.access_basis(*terms)
        block = self._head.latest()
        now = int(self._clock())
        cached = self._cached(terms, block.hash, now)
        if cached is not None:
            return cached
        return self._decide(terms, block.hash, now)

    def watch_head(self) -> asyncio.Future[HeadOutcome] | None:
        """Start learning the chain's head now, for a read that will ask
        :meth:`authorize_read_async` after other work (None: no cache, nothing to start)."""
        return self._async_head.latest() if self._async_head is not None else None

    async def basis_async(
        self,
        account: PatientAccount,
        provider: str,
        category: str,
        purpose: str,
        *,
        head: asyncio.Future[HeadOutcome] | None = None,
    ) -> AccessBasis:
        """:meth:`basis` for a coroutine: waits for the head on the loop, calls in a thread.

        ``head`` is :meth:`watch_head`'s future, started when the read arrived.
        """
        terms = _terms(account, provider, category, purpose)
        if self._async_head is None:
            return await asyncio.to_thread(self._registry.access_basis, *terms)
        # Not shielded: the head future is this read's own (AsyncHeadWatch.latest).
        block = block_of(await (head or self._async_head.latest()))
        now = int(self._clock())
        cached = self._cached(terms, block.hash, now)
        if cached is not None:
            return cached
        # Single flight: every new block empties the cache, and the readers then waiting
        # on the loop all miss at once; they share one decision for the same terms, block
        # and second instead of a pair of eth_calls and a worker thread each (at
        # concurrency 32, a burst of 64 calls behind six threads after each new block).
        key = (asyncio.get_running_loop(), terms, block.hash, now)
        deciding = self._deciding.get(key)
        if deciding is None:
            deciding = asyncio.ensure_future(
                asyncio.to_thread(self._decide, terms, block.hash, now)
            )
            self._deciding[key] = deciding
            deciding.add_done_callback(lambda _done: self._deciding.pop(key, None))
        try:
            # Shielded: one reader's cancellation must not cancel the others' decision.
            return await asyncio.shield(deciding)
        except VaultError as exc:  # ChainUnavailable and kin: each reader its own copy
            raise copy.copy(exc) from exc.__cause__

    def _cached(self, terms: _Terms, block_hash: str, now: int) -> AccessBasis | None:
        with self._lock:
            if block_hash != self._block_hash:
                self._block_hash, self._decisions = block_hash, {}
            cached = self._decisions.get(terms)
        if cached is not None and cached.start <= now <= cached.end:
            return cached.basis
        return None

    def _decide(self, terms: _Terms, block_hash: str, now: int) -> AccessBasis:
        end = now + self._cache_seconds
        at_start, at_end = self._registry.access_basis_span(
            *terms, block_hash=block_hash, start=now, end=end
        )
        if at_start is at_end:
            with self._lock:
                if block_hash == self._block_hash:
                    if len(self._decisions) >= MAX_CACHED_DECISIONS:
                        self._decisions.clear()
                    self._decisions[terms] = _Cached(at_start, now, end)
        return at_start

    def authorize_read(
        self,
        *,
        account: PatientAccount,
        provider: str,
        category: str,
        purpose: str,
        record_id: str = "",
    ) -> ReadDecision:
        """Allow (and audit) one read, or raise. Never allows without the chain's yes.

        Raises :class:`AccessDenied` (no consent or emergency access on chain) and
        :class:`ChainUnavailable` (the chain cannot answer). Both are audited as denials.
        """
        try:
            basis = self.basis(account, provider, category, purpose)
        except ChainUnavailable as exc:
            self._audit.append(_read_event(account, provider, category, purpose, record_id, exc))
            raise
        self._audit.append(_read_event(account, provider, category, purpose, record_id, basis))
        return _decision(basis, category, purpose)

    async def authorize_read_async(
        self,
        *,
        account: PatientAccount,
        provider: str,
        category: str,
        purpose: str,
        record_id: str = "",
        head: asyncio.Future[HeadOutcome] | None = None,
    ) -> ReadDecision:
        """:meth:`authorize_read` for the event loop (the provider read's hot path): the same
        decision and the same audit entry, committed before this returns."""
        try:
            basis = await self.basis_async(account, provider, category, purpose, head=head)
        except ChainUnavailable as exc:
            event = _read_event(account, provider, category, purpose, record_id, exc)
            await self._audit.append_async(event)
            raise
        event = _read_event(account, provider, category, purpose, record_id, basis)
        await self._audit.append_async(event)
        return _decision(basis, category, purpose)


def _in_executor(fetch: Callable[[], BlockRef]) -> Callable[[], Awaitable[BlockRef]]:
    return lambda: asyncio.get_running_loop().run_in_executor(None, fetch)


def _terms(account: PatientAccount, provider: str, category: str, purpose: str) -> _Terms:
    return account.chain_patient_id, provider, scope_id(category), purpose_id(purpose)


def _read_event(
    account: PatientAccount,
    provider: str,
    category: str,
    purpose: str,
    record_id: str,
    outcome: AccessBasis | ChainUnavailable,
) -> AuditEvent:
    if isinstance(outcome, ChainUnavailable):
        verdict, action, reason = "denied", "read", outcome.code
    elif outcome is AccessBasis.NONE:
        verdict, action, reason = "denied", "read", "no_consent"
    else:
        verdict, reason = "allowed", ""
        action = "emergency_read" if outcome is AccessBasis.EMERGENCY else "read"
    return AuditEvent(
        patient_id=account.handle,
        actor=provider,
        action=action,
        outcome=verdict,
        scope=category,
        purpose=purpose,
        record_id=record_id,
        reason=reason,
    )


def _decision(basis: AccessBasis, category: str, purpose: str) -> ReadDecision:
    if basis is AccessBasis.NONE:
        raise AccessDenied(
            "no consent on chain for this scope and purpose",
            details={"scope": category, "purpose": purpose},
        )
    return ReadDecision(basis, category)
