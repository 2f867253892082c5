"""Inclusion proofs of audit entries, and their verification by a patient.

A proof carries the entry's fields, its predecessor's hash, the audit path inside the
anchored batch, and the batch's sequence range. The verifier recomputes the entry hash
and the Merkle root and compares the root with the one the contract stores for that
range — not with anything the vault says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vault.audit import merkle
from vault.audit.log import Anchor, AuditEntry, AuditLog, entry_hash


@dataclass(frozen=True)
class InclusionProof:
    entry: AuditEntry
    anchor: Anchor
    path: list[bytes]

    @property
    def index(self) -> int:
        return self.entry.seq - self.anchor.first_seq

    @property
    def size(self) -> int:
        return self.anchor.last_seq - self.anchor.first_seq + 1


def proofs_for(
    log: AuditLog, entries: list[AuditEntry], *, anchor_of: Callable[[int], Anchor | None]
) -> list[InclusionProof | None]:
    """A proof for each entry already anchored (None for entries not anchored yet).

    ``anchor_of(seq)`` names the anchored range holding ``seq`` — in production it asks
    the chain, so a proof never rests on the vault's own note of what it anchored.
    """
    anchors: list[Anchor] = []
    # One anchored range's leaves at a time: entries come in sequence order, so those of
    # one range are consecutive, and a page touching many ranges never holds them all.
    current: tuple[int, merkle.MerkleTree] | None = None
    proofs: list[InclusionProof | None] = []
    for entry in entries:
        anchor = next((a for a in anchors if a.first_seq <= entry.seq <= a.last_seq), None)
        if anchor is None:
            anchor = anchor_of(entry.seq)
            if anchor is None:
                proofs.append(None)
                continue
            anchors.append(anchor)
        if current is None or current[0] != anchor.first_seq:
            # Only the range's leaf hashes are read, not its entries.
            leaves = log.leaves(first=anchor.first_seq, last=anchor.last_seq)
            current = (anchor.first_seq, merkle.MerkleTree(leaves))
        path = current[1].path(entry.seq - anchor.first_seq)
        proofs.append(InclusionProof(entry, anchor, path))
    return proofs


def verify_proof(proof: InclusionProof, *, chain_root: bytes) -> bool:
    """True when the entry is intact and included under ``chain_root`` (read from chain)."""
    entry = proof.entry
    if entry_hash(entry.seq, entry.at, entry.event, entry.prev_hash) != entry.entry_hash:
        return False
    return merkle.verify_inclusion(entry.leaf, proof.index, proof.size, proof.path, chain_root)
