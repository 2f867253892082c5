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
    batches: dict[int, list[bytes]] = {}
    proofs: list[InclusionProof | None] = []
    for entry in entries:
        anchor = next((a for a in anchors if a.first_seq <= entry.seq <= a.last_seq), None)
        if anchor is None:
            anchor = anchor_of(entry.seq)
            if anchor is None:
                proofs.append(None)
                continue
            anchors.append(anchor)
        if anchor.first_seq not in batches:
            # Only the range's leaf hashes are read, not its entries.
            batches[anchor.first_seq] = log.leaves(first=anchor.first_seq, last=anchor.last_seq)
        leaves = batches[anchor.first_seq]
        path = merkle.inclusion_proof(leaves, entry.seq - anchor.first_seq)
        proofs.append(InclusionProof(entry, anchor, path))
    return proofs


def verify_proof(proof: InclusionProof, *, chain_root: bytes) -> bool:
    """True when the entry is intact and included under ``chain_root`` (read from chain)."""
    entry = proof.entry
    if entry_hash(entry.seq, entry.at, entry.event, entry.prev_hash) != entry.entry_hash:
        return False
    return merkle.verify_inclusion(entry.leaf, proof.index, proof.size, proof.path, chain_root)
