"""Secret files: one secret however many processes create it at once, never a partial read."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from vault.crypto.secret_files import load_or_create_secret
from vault.errors import ConfigurationError


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "pepper"
    with ProcessPoolExecutor(8) as pool:
        values = set(pool.map(load_or_create_secret, [path] * 48))
    assert len(values) == 1 and len(next(iter(values))) == 32
    # Only the secret is left: no staging file of a process that lost the race.
    assert [p.name for p in path.parent.iterdir()] == ["pepper"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        load_or_create_secret(path)
