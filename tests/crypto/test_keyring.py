"""The master keyring: file format, permissions, rotation, inline form, reloading."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from vault.crypto.keyring import (
    FileKeyring,
    load_keyring_file,
    load_or_create_keyring_file,
    new_keyring,
    parse_keyring,
    retire_keyring_version,
    rotate_keyring_file,
)
from vault.errors import KeyringError


def test_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "master.keyring"
    first = load_or_create_keyring_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.versions == [1]
    assert load_or_create_keyring_file(path).key(1) == first.key(1)
    document = json.loads(path.read_text())
    assert document["format"] == "vault-keyring/1"
    assert document["keys"][0]["version"] == 1 and len(document["keys"][0]["key"]) == 64


def test_refuses_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "k"
    load_or_create_keyring_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyringError):
        load_keyring_file(path)


def test_rotation_adds_a_newest_version_and_keeps_old(tmp_path: Path) -> None:
    path = tmp_path / "k"
    original = load_or_create_keyring_file(path)
    rotated = rotate_keyring_file(path)
    assert rotated.versions == [1, 2] and rotated.current_version == 2
    assert rotated.key(1) == original.key(1) and rotated.key(2) != original.key(1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    retired = retire_keyring_version(path, 1)
    assert retired.versions == [2]
    with pytest.raises(KeyringError):
        retire_keyring_version(path, 2)  # the newest cannot go


def test_file_keyring_sees_rotation_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "k"
    source = FileKeyring(path)
    assert source.get().versions == [1]
    rotate_keyring_file(path)
    assert source.get().versions == [1, 2]


def test_inline_forms() -> None:
    keyring = new_keyring()
    assert parse_keyring(keyring.to_json()).keys == keyring.keys
    bare = parse_keyring("ab" * 32)
    assert bare.versions == [1]
    for bad in ("zz", '{"format": "other", "keys": []}', '{"format": "vault-keyring/1"}', "ab" * 8):
        with pytest.raises(KeyringError):
            parse_keyring(bad)


def test_repr_never_shows_keys() -> None:
    keyring = new_keyring()
    key = keyring.key(1)
    assert key is not None and key.hex() not in repr(keyring)


def test_reads_reuse_the_loaded_keyring_only_while_it_holds_the_version(tmp_path: Path) -> None:
    """``for_version`` skips the file while the loaded keyring holds the version and was
    checked within a second; a version rotated in elsewhere is found at once, and one
    retired elsewhere is gone here once the second has passed."""
    path = tmp_path / "k"
    now = [0.0]
    source = FileKeyring(path, clock=lambda: now[0])
    first = source.get()
    assert source.for_version(1) is first
    rotate_keyring_file(path)  # another process: version 2 appears
    rotated = source.for_version(2)
    assert rotated.versions == [1, 2]  # missing here, so the file was read at once
    retire_keyring_version(path, 1)  # another process retires version 1
    now[0] += 0.5
    assert source.for_version(1).versions == [1, 2]  # within the second: the loaded one
    now[0] += 0.6
    assert source.for_version(1).versions == [2]  # past it: the file again, without 1
    assert source.get().versions == [2]  # writes always read the file
