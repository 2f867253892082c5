"""Merkle trees over audit entries, with inclusion proofs (RFC 6962 / 9162 shape).

Written here rather than taken from a library because the exact byte layout is part of
the vault's public contract: a patient verifies a proof with nothing but this module's
rules and the root the contract stores. Leaves and interior nodes are domain-separated
(0x00 / 0x01 prefixes) so an interior node cannot pose as a leaf (second-preimage
attack), and unbalanced trees split at the largest power of two below the size, exactly
as RFC 9162 section 2.1 does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """Largest power of two strictly below ``size`` (size >= 2)."""
    k = 1
    while k << 1 < size:
        k <<= 1
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of already-hashed leaves. Raises ValueError on an empty list."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


class TreeBuilder:
    """The tree hash of leaves given one at a time, in memory logarithmic in their number.

    For anchoring, which hashes a minute of reads (a quarter of a million leaves at full
    load) in a thread beside the event loop: built this way, it can stop between any two
    leaves to hand the interpreter back to the loop. Keeps the roots of the perfect
    subtrees the leaves so far make up, largest first (their sizes are the binary digits of
    the count); :meth:`root` folds them right to left, which is RFC 9162's split at the
    largest power of two, so the result equals :func:`root` of the same leaves.
    """

    def __init__(self) -> None:
        self._subtrees: list[tuple[int, bytes]] = []  # (leaf count, subtree hash)

    def append(self, leaf: bytes) -> None:
        size, node = 1, leaf
        while self._subtrees and self._subtrees[-1][0] == size:
            _, left = self._subtrees.pop()
            size, node = size * 2, node_hash(left, node)
        self._subtrees.append((size, node))

    def root(self) -> bytes:
        """The tree hash of the leaves so far. Raises ValueError when there are none."""
        if not self._subtrees:
            raise ValueError("a Merkle tree needs at least one leaf")
        node = self._subtrees[-1][1]
        for _, left in reversed(self._subtrees[:-1]):
            node = node_hash(left, node)
        return node


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for ``leaves[index]``, from the leaf's sibling up to the root's child."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root(leaves[:k])]


class MerkleTree:
    """Every level of the tree over ``leaves``, for many inclusion proofs in one range.

    :func:`inclusion_proof` rehashes the siblings' subtrees for each proof (every leaf of
    the range, each time); a page of a patient's access log asks for up to a thousand
    proofs in one anchored range. Built level by level, pairing nodes left to right and
    carrying a lone last node up unchanged, which is the same tree as RFC 9162's split at
    the largest power of two (tests check root and paths against it at every size).
    Memory: about twice the leaves.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        self._levels: list[list[bytes]] = [list(leaves)]
        while len(level := self._levels[-1]) > 1:
            upper = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                upper.append(level[-1])
            self._levels.append(upper)

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def path(self, index: int) -> list[bytes]:
        """:func:`inclusion_proof` of ``leaves[index]``."""
        if not 0 <= index < len(self._levels[0]):
            raise IndexError("leaf index out of range")
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):  # a lone last node has no sibling on this level
                path.append(level[sibling])
            index //= 2
        return path


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """True when ``proof`` puts ``leaf`` at ``index`` of a ``size``-leaf tree with that root.

    The RFC 9162 section 2.1.3.2 algorithm: never raises on malformed proofs, just answers False.
    """
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    current = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and current == expected_root
