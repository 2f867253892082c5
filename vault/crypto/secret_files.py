"""Secrets kept in files: created once with mode 0600, never logged.

The operator's master keyring, the biometric pepper and the relayer key live in small
files under ``data_dir/secrets``. They are generated on first run from the OS CSPRNG.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from vault.errors import ConfigurationError


def load_or_create_secret(path: Path, *, nbytes: int = 32) -> bytes:
    """Return the hex-encoded secret stored at ``path``, creating it if absent.

    Creation is atomic and exclusive (``O_EXCL``), so two processes starting at once
    agree on one secret. Refuses a file readable by group or others: a leaked pepper or
    master key defeats the vault's protections.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(nbytes) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
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
