"""Secrets kept in files: created once with mode 0600, never logged.

The operator's master keyring, the biometric pepper and the relayer key live in small
files under ``data_dir/secrets``. They are generated on first run from the OS CSPRNG.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from vault.errors import ConfigurationError


def load_or_create_secret(path: Path, *, nbytes: int = 32) -> bytes:
    """Return the hex-encoded secret stored at ``path``, creating it if absent.

    Creation is atomic and exclusive: the secret is written and synced under a temporary
    name, then hard-linked to ``path``, which fails if it exists. So two processes starting
    at once agree on one secret, and neither ever reads a file still being written. Refuses
    a file readable by group or others: a leaked pepper or master key defeats the vault's
    protections.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(nbytes) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process's secret won
                os.link(staging, path)
        finally:
            staging.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"secret file {path} is readable by others (mode {mode:o}); chmod 600 it"
        )
    text = path.read_text().strip()
    try:
        value = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigurationError(f"secret file {path} is not hex") from exc
    if len(value) < 16:
        raise ConfigurationError(f"secret file {path} holds fewer than 16 bytes")
    return value
