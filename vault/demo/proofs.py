"""Check a patient's access history against the chain, as a client who trusts only the chain.

For each entry the vault returns, the client recomputes the entry's hash from its fields,
then checks the inclusion proof against the Merkle root the ConsentRegistry stores for the
anchor covering that entry (read over the chain's own RPC, not from the vault's reply).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vault.audit import merkle
from vault.audit.log import AuditEvent, entry_hash
from vault.chain.compiler import load_artifact
from vault.chain.registry import ConsentRegistryClient
from vault.chain.rpc import check_chain_id, connect
from vault.errors import VaultError


class ProofInvalid(VaultError):
    """An access-history entry does not match its hash or its proof against the chain."""

    code = "proof_invalid"


@dataclass(frozen=True)
class VerifiedEntry:
    """One entry whose hash and inclusion proof checked out against an on-chain root."""

    seq: int
    anchor_index: int
    root: bytes
    anchored_at: int


def registry_on_chain(
    *, rpc_url: str, address: str, chain_id: int, project_root: Path
) -> ConsentRegistryClient:
    """A read-only registry client on ``rpc_url``.

    Raises ``ChainUnavailable`` when the node does not answer and ``WrongChain`` when it is
    not ``chain_id``.
    """
    w3 = connect(rpc_url)
    check_chain_id(w3, chain_id)
    return ConsentRegistryClient.connect(
        w3=w3, address=address, artifact=load_artifact(project_root), chain_id=chain_id
    )


def verify_history(
    history: dict[str, Any], *, patient_handle: str, registry: ConsentRegistryClient
) -> list[VerifiedEntry]:
    """Verify every entry of a ``GET /patient/access-log`` body; raise on the first failure.

    Raises :class:`ProofInvalid` for an entry without a proof, a recomputed hash that
    differs, a proof for another range than the chain's anchor, or a proof that does not
    reach the chain's root; ``UnknownAuditSequence`` when the chain has no anchor for it.
    """
    verified = []
    for item in history["entries"]:
        entry, proof = item["entry"], item["proof"]
        seq = int(entry["seq"])
        if proof is None:
            raise ProofInvalid(f"entry {seq} is not anchored yet", details={"seq": seq})
        event = AuditEvent(
            patient_id=patient_handle,
            actor=entry["actor"],
            action=entry["action"],
            outcome=entry["outcome"],
            scope=entry["scope"],
            purpose=entry["purpose"],
            record_id=entry["record_id"],
            reason=entry["reason"],
        )
        digest = entry_hash(
            seq, datetime.fromisoformat(entry["at"]), event, _hex(entry["prev_hash"])
        )
        if "0x" + digest.hex() != entry["entry_hash"]:
            raise ProofInvalid(
                f"entry {seq}: its fields do not hash to its entry_hash", details={"seq": seq}
            )
        anchor = registry.anchor_covering(seq)
        if (anchor.first_seq, anchor.last_seq) != (proof["first_seq"], proof["last_seq"]):
            raise ProofInvalid(
                f"entry {seq}: proof is for entries {proof['first_seq']}-{proof['last_seq']}, "
                f"the chain anchored {anchor.first_seq}-{anchor.last_seq}",
                details={"seq": seq},
            )
        if not merkle.verify_inclusion(
            merkle.leaf_hash(digest),
            int(proof["index"]),
            int(proof["size"]),
            [_hex(p) for p in proof["path"]],
            anchor.root,
        ):
            raise ProofInvalid(
                f"entry {seq}: inclusion proof does not reach the root on chain "
                f"(anchor {anchor.index})",
                details={"seq": seq},
            )
        verified.append(VerifiedEntry(seq, anchor.index, anchor.root, anchor.anchored_at))
    return verified


def _hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    except ValueError as exc:
        raise ProofInvalid(f"not hex: {value[:20]!r}") from exc
