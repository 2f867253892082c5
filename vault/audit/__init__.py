"""The access trail: a hash-chained, append-only log whose Merkle roots are anchored on chain."""
