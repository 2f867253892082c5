"""Chain-head freshness: a reader is only ever served by a fetch that began after it arrived.

Unit tests: the node is a stand-in whose fetches the test starts and finishes at will,
because the property is about ordering (which fetch serves which reader), not about the
node. The real node is exercised in ``test_consent_cache.py``.
"""

from __future__ import annotations

import threading
import time

from vault.chain.head import HeadWatch
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


def _in_thread(watch: HeadWatch, results: list[BlockRef | Exception]) -> threading.Thread:
    def run() -> None:
        try:
            results.append(watch.latest())
        except Exception as exc:  # the test inspects it
            results.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_each_lone_reader_fetches() -> None:
    node = Node()
    watch = HeadWatch(node)
    assert [watch.latest().number for _ in range(3)] == [1, 2, 3]


def test_reader_arriving_during_a_fetch_waits_for_a_later_one() -> None:
    node = Node(hold=True)
    watch = HeadWatch(node)
    first: list[BlockRef | Exception] = []
    a = _in_thread(watch, first)
    node.started.acquire()  # fetch 1 is under way: it may predate what B knows
    second: list[BlockRef | Exception] = []
    b = _in_thread(watch, second)
    time.sleep(0.05)
    node.release.release()  # fetch 1 ends; B must not take its answer
    a.join(5)
    node.started.acquire()
    node.release.release()
    b.join(5)
    assert [r.number for r in first if isinstance(r, BlockRef)] == [1]
    assert [r.number for r in second if isinstance(r, BlockRef)] == [2]


def test_readers_arriving_together_share_one_later_fetch() -> None:
    node = Node(hold=True)
    watch = HeadWatch(node)
    results: list[BlockRef | Exception] = []
    threads = [_in_thread(watch, results)]
    node.started.acquire()
    threads += [_in_thread(watch, results) for _ in range(5)]
    time.sleep(0.05)
    node.release.release()
    node.started.acquire()  # exactly one more fetch serves the five
    node.release.release()
    for thread in threads:
        thread.join(5)
    assert node.fetches == 2
    assert sorted(r.number for r in results if isinstance(r, BlockRef)) == [1, 2, 2, 2, 2, 2]


def test_a_failed_fetch_fails_every_reader_it_serves() -> None:
    node = Node(hold=True)
    node.fail = True
    watch = HeadWatch(node)
    results: list[BlockRef | Exception] = []
    threads = [_in_thread(watch, results)]
    node.started.acquire()
    threads += [_in_thread(watch, results) for _ in range(3)]
    time.sleep(0.05)
    node.release.release()
    node.started.acquire()
    node.release.release()
    for thread in threads:
        thread.join(5)
    assert len(results) == 4
    assert all(isinstance(r, ChainUnavailable) for r in results)
    assert len({id(r) for r in results}) == 4  # each reader raised its own copy
