"""Anchor the access log on chain: on demand and on a schedule.

Several API processes may run the schedule at once; the contract accepts only the range
that starts at its next sequence number, so a process that loses the race gets the
contract's out-of-sequence error and simply tries again next time.
"""

from __future__ import annotations

from collections.abc import Callable

from vault.audit.log import Anchor, AuditLog
from vault.chain.registry import ConsentRegistryClient
from vault.errors import AuditAnchorOutOfSequence, UnknownAuditSequence


def anchor_audit_log(audit: AuditLog, registry: ConsentRegistryClient) -> Anchor | None:
    """Anchor every entry not yet anchored; None if nothing new or another process won."""
    try:
        return audit.anchor(registry)
    except AuditAnchorOutOfSequence:
        return None


def chain_anchor_of(registry: ConsentRegistryClient) -> Callable[[int], Anchor | None]:
    """Look up, on chain, the anchored range holding a sequence number."""

    def anchor_of(seq: int) -> Anchor | None:
        try:
            record = registry.anchor_covering(seq)
        except UnknownAuditSequence:
            return None
        return Anchor(record.first_seq, record.last_seq, record.root, "", 0)

    return anchor_of
