"""Chain-head freshness: a reader is only ever served by a fetch that began after it arrived.

Unit tests: the node is a stand-in whose fetches the test starts and finishes at will,
because the property is about ordering (which fetch serves which reader), not about the
node. The real node is exercised in ``test_consent_cache.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from vault.chain.head import AsyncHeadWatch, block_of
from vault.chain.registry import BlockRef
from vault.errors import ChainUnavailable


class Node:
    """Answers block N to the N-th fetch; a fetch can be held open until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.fetches = 0
        self.hold = hold
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail = False

    def __call__(self) -> BlockRef:
        self.fetches += 1
        number = self.fetches
        self.started.release()
        if self.hold:
            self.release.acquire()
        if self.fail:
            raise ChainUnavailable("node down")
        return BlockRef(number=number, hash=f"0x{number:064x}", timestamp=number)


def test_async_lone_readers_fetch_each_time() -> None:
    node = Node()

    async def main() -> list[int]:
        watch = AsyncHeadWatch(_sent_in_executor(node))
        return [block_of(await watch.latest()).number for _ in range(3)]

    assert asyncio.run(main()) == [1, 2, 3]


def test_async_arrivals_during_a_fetch_share_the_next_one() -> None:
    node = Node(hold=True)

    async def main() -> tuple[int, list[int]]:
        watch = AsyncHeadWatch(_sent_in_executor(node))
        first = watch.latest()  # starts fetch 1 at once
        await asyncio.to_thread(node.started.acquire)
        later = [watch.latest() for _ in range(4)]  # arrive while it runs
        node.release.release()
        one = block_of(await first).number
        await asyncio.to_thread(node.started.acquire)
        node.release.release()
        return one, [block_of(await f).number for f in later]

    one, later = asyncio.run(main())
    assert one == 1
    assert later == [2, 2, 2, 2]
    assert node.fetches == 2


def test_async_readers_queued_before_a_send_join_it_and_later_ones_do_not() -> None:
    """On the loop, a reader arrived when its step was queued: steps queued before a
    fetch is sent may join it, even if they run after the sending step; a step queued
    after the send never does."""
    node = Node(hold=True)

    async def main() -> tuple[int, list[int], list[int]]:
        watch = AsyncHeadWatch(_sent_in_executor(node))

        async def reader() -> int:
            return block_of(await watch.latest()).number

        early = [asyncio.create_task(reader()) for _ in range(3)]  # queued before the send
        first = watch.latest()  # sends fetch 1 from this step
        late = [asyncio.create_task(reader()) for _ in range(2)]  # queued after it
        await asyncio.to_thread(node.started.acquire)
        node.release.release()
        one = block_of(await first).number
        await asyncio.to_thread(node.started.acquire)
        node.release.release()
        return one, list(await asyncio.gather(*early)), list(await asyncio.gather(*late))

    one, early, late = asyncio.run(main())
    assert (one, early, late) == (1, [1, 1, 1], [2, 2])
    assert node.fetches == 2


def test_async_readers_started_in_one_pass_share_one_fetch() -> None:
    """Requests read in one pass of the loop: their handlers' steps are queued together,
    so the first one's fetch serves them all."""
    node = Node()

    async def main() -> list[int]:
        watch = AsyncHeadWatch(_sent_in_executor(node))

        async def reader() -> int:
            return block_of(await watch.latest()).number

        return list(await asyncio.gather(*(reader() for _ in range(8))))

    assert asyncio.run(main()) == [1] * 8
    assert node.fetches == 1


def test_async_a_cancelled_reader_leaves_the_fetch_to_the_others() -> None:
    """Each reader has a future of its own: a handler cancelled mid-read (its client went
    away) neither cancels the fetch nor the answer of the readers sharing it."""
    node = Node(hold=True)

    async def main() -> tuple[bool, list[int], int]:
        watch = AsyncHeadWatch(_sent_in_executor(node))
        readers = [watch.latest() for _ in range(3)]  # one fetch, three readers
        await asyncio.to_thread(node.started.acquire)
        readers[0].cancel()
        node.release.release()
        served = [block_of(await r).number for r in readers[1:]]
        again = watch.latest()
        await asyncio.to_thread(node.started.acquire)
        node.release.release()
        return readers[0].cancelled(), served, block_of(await again).number

    assert asyncio.run(main()) == (True, [1, 1], 2)
    assert node.fetches == 2


def test_async_failure_raises_for_every_reader() -> None:
    node = Node()
    node.fail = True

    async def main() -> None:
        watch = AsyncHeadWatch(_sent_in_executor(node))
        outcome = await watch.latest()
        with pytest.raises(ChainUnavailable):
            block_of(outcome)
        with pytest.raises(ChainUnavailable):
            block_of(await watch.latest())

    asyncio.run(main())


def _sent_in_executor(node: Node) -> Callable[[], Awaitable[BlockRef]]:
    # The shape of ConsentRegistryClient.latest_block_async: called, the fetch is under way.
    return lambda: asyncio.get_running_loop().run_in_executor(None, node)
