"""The consent decision on every provider read, and its audit entry.

Every provider read goes through :meth:`ConsentGate.authorize_read` (one record, the
deleted or damaged record included, break-glass reads included) or
:meth:`ConsentGate.authorize_list` (a listing, of every category or of one): each decides
*and* appends the audit entry, so no route can do one without the other.

The chain is the source of truth. Every decision is taken against a block the node
reported *after the read arrived* (:class:`~vault.chain.head.AsyncHeadWatch`), so a
revoke is enforced from the first read after its receipt:

* the decision for (patient, provider, scope, purpose) is cached *for that block only*,
  keyed by the block's hash: any new block (a revoke, a provider deactivated, a new
  emergency role, a chain reset) changes the hash and every cached decision is dropped
  before it can be used again. No event subscription is trusted to arrive in time; the
  head check on each read is what makes the cache unable to outlive a revocation;
* time still passes within one block: a decision is cached only when the contract gives
  the same answer now and ``cache_seconds`` ahead (two ``eth_call``s pinned to the block),
  and is reused only within that span. Windows only close as time passes, so equal ends
  mean the same answer throughout (see ``ConsentRegistryClient.access_basis_span``).

With ``cache_seconds`` 0 each decision is one ``eth_call`` at latest. A chain that cannot
answer (unreachable, contract missing, wrong chain) means *no*: the read is refused with
:class:`ChainUnavailable` (503), and the refusal is audited too. Every decision is
appended to the access log before any data is returned; if the log cannot be written, the
read is refused (the log's error propagates).

The gate is awaited on the event loop: readers wait there for the shared head fetch and
the audit commit, and each blocking call (a JSON-RPC round trip, the commit) runs in a
worker thread. The cache is process-local but holds nothing another process could
contradict: every entry is checked against the chain's head on every read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from vault.access.accounts import PatientAccount
from vault.access.scopes import purpose_id, scope_id
from vault.audit.log import AuditEvent, AuditLog
from vault.chain.head import AsyncHeadWatch, block_of
from vault.chain.registry import AccessBasis, BlockRef, ConsentRegistryClient
from vault.errors import AccessDenied, ChainUnavailable


@dataclass(frozen=True)
class ReadDecision:
    basis: AccessBasis
    scope: str


#: Decisions kept for one block at most; beyond this many, the oldest block's are dropped.
MAX_CACHED_DECISIONS = 100_000

#: Longest scope list an audit entry of a listing keeps (the column's width).
_AUDIT_SCOPE_LENGTH = 64

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
        cache_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """With ``cache_seconds`` > 0, decisions are cached per block (module doc) and the
        head is fetched once per wave of concurrent readers; with 0, every decision is one
        ``eth_call`` at latest."""
        self._registry = registry
        self._audit = audit
        self._head = AsyncHeadWatch(self._fetch_head) if cache_seconds > 0 else None
        self._cache_seconds = cache_seconds
        self._clock = clock
        # The cache is shared by every event loop the gate serves (a test client may run
        # one per request, each on its own thread).
        self._lock = threading.Lock()
        self._block_hash = ""
        self._decisions: dict[_Terms, _Cached] = {}

    async def authorize_read(
        self,
        *,
        account: PatientAccount,
        provider: str,
        category: str,
        purpose: str,
        record_id: str = "",
    ) -> ReadDecision:
        """Decide and audit one read of a record in ``category``, or raise.

        Never allows without the chain's yes. Raises :class:`AccessDenied` (no consent or
        emergency access on chain) and :class:`ChainUnavailable` (the chain cannot
        answer), both audited as denials, and whatever the audit log raises when it cannot
        append (the read is then refused whatever the chain said).
        """
        try:
            basis = (await self._bases(account, provider, [category], purpose))[category]
        except ChainUnavailable as exc:
            await self._audit.append_async(
                _read_event(account, provider, category, purpose, record_id, exc)
            )
            raise
        await self._audit.append_async(
            _read_event(account, provider, category, purpose, record_id, basis)
        )
        if basis is AccessBasis.NONE:
            raise AccessDenied(
                "no consent on chain for this scope and purpose",
                details={"scope": category, "purpose": purpose},
            )
        return ReadDecision(basis, category)

    async def authorize_list(
        self,
        *,
        account: PatientAccount,
        provider: str,
        categories: Collection[str],
        purpose: str,
    ) -> frozenset[str]:
        """Decide a listing: which of ``categories`` the provider may see, all decided at
        one block, audited as one ``list`` entry naming the allowed ones (the asked ones
        when none is).

        Raises :class:`AccessDenied` when none is allowed (no categories at all included),
        :class:`ChainUnavailable` when the chain cannot answer (both audited), and what
        the audit log raises, as :meth:`authorize_read` does.
        """
        try:
            bases = await self._bases(account, provider, categories, purpose)
        except ChainUnavailable as exc:
            await self._audit.append_async(_list_event(account, provider, purpose, categories, exc))
            raise
        allowed = frozenset(c for c, basis in bases.items() if basis is not AccessBasis.NONE)
        basis = max(bases.values(), default=AccessBasis.NONE)  # the strongest one it stood on
        event = _list_event(account, provider, purpose, allowed or categories, basis)
        await self._audit.append_async(event)
        if not allowed:
            raise AccessDenied(
                "no consent on chain for any of this patient's data", details={"purpose": purpose}
            )
        return allowed

    def _fetch_head(self) -> Awaitable[BlockRef]:
        # Started now (the watch's freshness rule counts on it), finished in a worker thread.
        return asyncio.get_running_loop().run_in_executor(None, self._registry.latest_block)

    async def _bases(
        self, account: PatientAccount, provider: str, categories: Collection[str], purpose: str
    ) -> dict[str, AccessBasis]:
        """The chain's answer for each category (the contract also honours a consent or
        emergency window for all data), every one taken at the same head."""
        terms = {c: _terms(account, provider, c, purpose) for c in categories}
        if self._head is None:
            return {
                c: await asyncio.to_thread(self._registry.access_basis, *t)
                for c, t in terms.items()
            }
        block_hash = block_of(await self._head.latest()).hash
        now = int(self._clock())
        return {c: await self._basis_at(t, block_hash, now) for c, t in terms.items()}

    async def _basis_at(self, terms: _Terms, block_hash: str, now: int) -> AccessBasis:
        with self._lock:
            if block_hash != self._block_hash:
                self._block_hash, self._decisions = block_hash, {}
            cached = self._decisions.get(terms)
        if cached is not None and cached.start <= now <= cached.end:
            return cached.basis
        # Readers missing together (every new block empties the cache) each ask the node;
        # the burst is one pair of eth_calls per concurrent reader, once per block.
        end = now + self._cache_seconds
        at_start, at_end = await asyncio.to_thread(
            self._registry.access_basis_span, *terms, block_hash=block_hash, start=now, end=end
        )
        if at_start is at_end:
            with self._lock:
                if block_hash == self._block_hash:
                    if len(self._decisions) >= MAX_CACHED_DECISIONS:
                        self._decisions.clear()
                    self._decisions[terms] = _Cached(at_start, now, end)
        return at_start


def _terms(account: PatientAccount, provider: str, category: str, purpose: str) -> _Terms:
    return account.chain_patient_id, provider, scope_id(category), purpose_id(purpose)


def _verdict(outcome: AccessBasis | ChainUnavailable) -> tuple[str, str]:
    """(outcome, reason) of an audit entry."""
    if isinstance(outcome, ChainUnavailable):
        return "denied", outcome.code
    if outcome is AccessBasis.NONE:
        return "denied", "no_consent"
    return "allowed", ""


def _read_event(
    account: PatientAccount,
    provider: str,
    category: str,
    purpose: str,
    record_id: str,
    outcome: AccessBasis | ChainUnavailable,
) -> AuditEvent:
    verdict, reason = _verdict(outcome)
    return AuditEvent(
        patient_id=account.handle,
        actor=provider,
        action="emergency_read" if outcome is AccessBasis.EMERGENCY else "read",
        outcome=verdict,
        scope=category,
        purpose=purpose,
        record_id=record_id,
        reason=reason,
    )


def _list_event(
    account: PatientAccount,
    provider: str,
    purpose: str,
    scopes: Collection[str],
    outcome: AccessBasis | ChainUnavailable,
) -> AuditEvent:
    verdict, reason = _verdict(outcome)
    return AuditEvent(
        patient_id=account.handle,
        actor=provider,
        action="list",
        outcome=verdict,
        scope=",".join(sorted(scopes))[:_AUDIT_SCOPE_LENGTH],
        purpose=purpose,
        reason=reason,
    )
