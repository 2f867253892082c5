"""The chain's latest block, as fresh as each reader needs it, fetched once per wave.

A provider read may reuse a consent decision only while the chain has not moved, so every
read must learn the latest block *after it arrived*: a block fetched before could predate
a revoke whose receipt the caller already holds. Fetching once per read would cost a
round trip each; instead, concurrent readers share fetches: a reader is served by a fetch
that started after it arrived (waiting for it if it is still in flight) and starts its
own only when no such fetch exists. Under load this is one ``eth_getBlockByNumber`` per
wave of readers; alone, one per read. Arrival and fetch start are ordered by one counter
under one lock, so "started after it arrived" never depends on clock resolution.
Readers are threads: the API's worker threads, which run the provider routes.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable

from vault.chain.registry import BlockRef
from vault.errors import VaultError

#: What a fetch ends with: the block, or the error every reader it serves must raise.
_Outcome = BlockRef | VaultError


def _attempt(fetch: Callable[[], BlockRef]) -> _Outcome:
    try:
        return fetch()
    except VaultError as exc:  # ChainUnavailable and kin: every reader it serves fails closed
        return exc


def _block_of(outcome: _Outcome) -> BlockRef:
    """The block, or a fresh copy of the fetch's error raised in the caller's context."""
    if isinstance(outcome, VaultError):
        # A copy per reader: one exception object raised in many threads would share
        # (and grow) one traceback.
        raise copy.copy(outcome)
    return outcome


class HeadWatch:
    """Single-flight access to ``fetch`` (the node's latest block) with freshness by arrival."""

    def __init__(self, fetch: Callable[[], BlockRef]) -> None:
        self._fetch = fetch
        self._cond = threading.Condition()
        self._ticket = 0  # bumped by every arrival and every fetch start
        self._in_flight: int | None = None  # ticket of the fetch under way
        self._done_ticket = -1  # ticket of the newest finished fetch
        self._done: _Outcome | None = None

    def latest(self) -> BlockRef:
        """A block fetched entirely after this call began. Raises what the fetch raised."""
        with self._cond:
            self._ticket += 1
            arrived = self._ticket
            while True:
                if self._done_ticket > arrived:
                    assert self._done is not None
                    return _block_of(self._done)
                if self._in_flight is None:
                    break
                # A fetch is under way. If it started after we arrived it will serve us;
                # if before, it may predate what our caller knows: wait, then start ours.
                self._cond.wait()
            self._ticket += 1
            mine = self._in_flight = self._ticket
        try:
            outcome = _attempt(self._fetch)
        except BaseException:
            with self._cond:
                self._in_flight = None
                self._cond.notify_all()
            raise
        with self._cond:
            self._done_ticket, self._done = mine, outcome
            self._in_flight = None
            self._cond.notify_all()
        return _block_of(outcome)
