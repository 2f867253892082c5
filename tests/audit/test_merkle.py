from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.audit.merkle import (
    MerkleTree,
    TreeBuilder,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_inclusion,
)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_small_trees_match_the_rfc_shape() -> None:
    a, b, c = leaves(3)
    assert root([a]) == a
    assert root([a, b]) == node_hash(a, b)
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = leaves(2)
    assert leaf_hash(a + b) != node_hash(a, b)
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 70), data=st.data())
def test_every_leaf_proves_inclusion(size: int, data: st.DataObject) -> None:
    tree = leaves(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index)
    assert verify_inclusion(tree[index], index, size, proof, root(tree))


@settings(max_examples=200, deadline=None)
@given(size=st.integers(2, 70), data=st.data())
def test_tampered_proofs_fail(size: int, data: st.DataObject) -> None:
    tree = leaves(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index)
    good_root = root(tree)
    other = data.draw(st.integers(0, size - 1).filter(lambda j: j != index))
    assert not verify_inclusion(tree[other], index, size, proof, good_root)
    assert not verify_inclusion(tree[index], other, size, proof, good_root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = hashlib.sha256(bad[k]).digest()
        assert not verify_inclusion(tree[index], index, size, bad, good_root)
        assert not verify_inclusion(tree[index], index, size, proof[:-1], good_root)
    assert not verify_inclusion(tree[index], index, size, [*proof, good_root], good_root)


def test_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError):
        root([])
    with pytest.raises(IndexError):
        inclusion_proof(leaves(2), 2)


def test_a_tree_built_leaf_by_leaf_has_the_rfc_root_at_every_size() -> None:
    tree = leaves(600)
    builder = TreeBuilder()
    for size in range(1, len(tree) + 1):
        builder.append(tree[size - 1])
        assert builder.root() == root(tree[:size]), size


def test_a_tree_builder_with_no_leaves_has_no_root() -> None:
    with pytest.raises(ValueError):
        TreeBuilder().root()


def test_a_tree_built_level_by_level_gives_the_rfc_root_and_paths_at_every_size() -> None:
    for size in range(1, 70):
        tree = MerkleTree(leaves(size))
        assert tree.root == root(leaves(size))
        for index in range(size):
            assert tree.path(index) == inclusion_proof(leaves(size), index)
    with pytest.raises(IndexError):
        MerkleTree(leaves(3)).path(3)
    with pytest.raises(ValueError):
        MerkleTree([])
