"""The chain's latest block, as fresh as each reader needs it, fetched once per wave.

A provider read may reuse a consent decision only while the chain has not moved, so every
read must learn the latest block *after it arrived*: a block fetched before could predate
a revoke whose receipt the caller already holds. Fetching once per read would cost a
round trip each; instead, concurrent readers share fetches: a reader is served by a fetch
that started after it arrived (waiting for it if it is still in flight) and starts its
own only when no such fetch exists. Under load this is one ``eth_getBlockByNumber`` per
wave of readers; alone, one per read. Arrival and fetch start are ordered by one counter
under one lock, so "started after it arrived" never depends on clock resolution.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vault.chain.registry import BlockRef
from vault.errors import VaultError

#: What a fetch ends with: the block, or the error every reader it serves must raise.
HeadOutcome = BlockRef | VaultError


def _attempt(fetch: Callable[[], BlockRef]) -> HeadOutcome:
    try:
        return fetch()
    except VaultError as exc:  # ChainUnavailable and kin: every reader it serves fails closed
        return exc


def block_of(outcome: HeadOutcome) -> BlockRef:
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
        self._done: HeadOutcome | None = None

    def latest(self) -> BlockRef:
        """A block fetched entirely after this call began. Raises what the fetch raised."""
        with self._cond:
            self._ticket += 1
            arrived = self._ticket
            while True:
                if self._done_ticket > arrived:
                    assert self._done is not None
                    return block_of(self._done)
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
        return block_of(outcome)


class AsyncHeadWatch:
    """:class:`HeadWatch` for coroutines on one event loop.

    The same rule (a reader is served only by a fetch that started after it arrived), with
    waiting done on the loop rather than on thread locks: under load, readers parked on
    locks each need the GIL back in turn, which serialized them behind the loop's work.
    ``fetch`` sends its request when called and returns an awaitable of the block
    (:meth:`ConsentRegistryClient.latest_block_async`), so :meth:`latest` puts a request
    on the wire at once when none is under way and the caller can do other work while it
    travels; arrivals during a fetch all join the one fetch that starts when it ends.

    **Arrival, on the loop.** A coroutine's step runs from the loop's ready queue, which
    is first in, first out, and a request's handler is scheduled only once its bytes have
    been read. So a reader whose step was queued before a fetch was sent arrived before
    that fetch was sent, even if its step runs just after the sending one: it may join
    that fetch. :meth:`_start` queues a callback that closes the fetch to joiners *before*
    it sends the request; every step queued ahead of that callback was queued before the
    send, and every later one is not served by it. Readers whose requests were read in
    one pass of the loop thus share one fetch (under load at concurrency 8, 2.2 readers
    per fetch without this, most fetches serving one).
    """

    def __init__(self, fetch: Callable[[], Awaitable[BlockRef]]) -> None:
        self._fetch = fetch
        # Futures belong to one loop; a test client may drive the app from several.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopFetches] = (
            weakref.WeakKeyDictionary()
        )

    def latest(self) -> asyncio.Future[HeadOutcome]:
        """A future of a fetch that starts no earlier than this call (``block_of`` it)."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopFetches()
        if state.in_flight is None:
            return self._start(loop, state)
        if state.joinable is not None:
            return state.joinable  # sent after this step was queued: see the class doc
        if state.next is None:
            state.next = loop.create_future()
        return state.next

    def _start(
        self, loop: asyncio.AbstractEventLoop, state: _LoopFetches
    ) -> asyncio.Future[HeadOutcome]:
        fetch: asyncio.Future[HeadOutcome]
        # Closed to joiners by a callback queued before the request leaves (class doc).
        state.generation += 1
        loop.call_soon(_close_to_joiners, state, state.generation)
        try:
            sent = self._fetch()  # the request leaves now
        except VaultError as exc:
            fetch = loop.create_future()
            fetch.set_result(exc)
        else:
            fetch = loop.create_task(_outcome(sent))
        state.in_flight = state.joinable = fetch
        fetch.add_done_callback(lambda _done: self._finished(loop, state))
        return fetch

    def _finished(self, loop: asyncio.AbstractEventLoop, state: _LoopFetches) -> None:
        state.in_flight = state.joinable = None
        if state.next is None:
            return
        waiting, state.next = state.next, None
        self._start(loop, state).add_done_callback(lambda done: _settle(waiting, done))


async def _outcome(sent: Awaitable[BlockRef]) -> HeadOutcome:
    try:
        return await sent
    except VaultError as exc:  # as in _attempt: every reader it serves fails closed
        return exc


@dataclass
class _LoopFetches:
    in_flight: asyncio.Future[HeadOutcome] | None = None  # the fetch under way
    joinable: asyncio.Future[HeadOutcome] | None = None  # it, until its closing callback
    generation: int = 0  # fetches started; tells a closing callback if its fetch is current
    next: asyncio.Future[HeadOutcome] | None = None  # readers who arrived during it


def _close_to_joiners(state: _LoopFetches, generation: int) -> None:
    if state.generation == generation:
        state.joinable = None


def _settle(waiting: asyncio.Future[HeadOutcome], done: asyncio.Future[HeadOutcome]) -> None:
    if waiting.done():
        return
    if done.cancelled():
        waiting.cancel()
    elif (error := done.exception()) is not None:
        waiting.set_exception(error)
    else:
        waiting.set_result(done.result())
