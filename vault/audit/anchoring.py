"""Anchor the access log on chain: on demand and on a schedule.

Several API processes may run the schedule at once; the contract accepts only the range
that starts at its next sequence number, so a process that loses the race gets the
contract's out-of-sequence error and simply tries again next time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from vault.audit.log import Anchor, AuditLog
from vault.chain.registry import ConsentRegistryClient
from vault.errors import AuditAnchorOutOfSequence, UnknownAuditSequence, VaultError

log = logging.getLogger("vault.audit")


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


class ScheduledAnchoring:
    """A daemon thread anchoring every ``interval`` seconds until :meth:`stop`."""

    def __init__(
        self, *, audit: AuditLog, registry: ConsentRegistryClient, interval: float
    ) -> None:
        self._audit = audit
        self._registry = registry
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-anchoring", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                anchor = anchor_audit_log(self._audit, self._registry)
            except VaultError as exc:
                # The chain or database is down: the entries stay and the next run anchors them.
                log.warning("audit anchoring failed: %s", exc.code)
                continue
            if anchor is not None:
                log.info("anchored audit entries %d-%d", anchor.first_seq, anchor.last_seq)
