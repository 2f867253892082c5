"""The operator's master keyring: versioned AES-256 keys, newest encrypts, all decrypt.

File format (JSON, mode 0600, written atomically)::

    {"format": "vault-keyring/1",
     "keys": [{"version": 1, "created": "2025-01-01T00:00:00+00:00", "key": "<64 hex>"}, ...]}

The same JSON can be given inline in ``VAULT_MASTER_KEYRING``; a bare 64-hex-digit
string there is read as a keyring holding only version 1. Master keys only ever wrap
per-patient keys (:mod:`vault.crypto.envelope`), so rotating them re-wraps one small key
per patient and never touches record ciphertext.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from vault.crypto.aead import KEY_BYTES, Random
from vault.errors import KeyringError

KEYRING_FORMAT = "vault-keyring/1"


@dataclass(frozen=True)
class MasterKeyring:
    """Master keys by version. Immutable; rotation returns a new keyring."""

    keys: Mapping[int, bytes]
    created: Mapping[int, str]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyringError("the master keyring holds no key")
        for version, key in self.keys.items():
            if version < 1 or len(key) != KEY_BYTES:
                raise KeyringError(f"master key version {version} is malformed")

    def __repr__(self) -> str:  # never print key material
        return f"MasterKeyring(versions={sorted(self.keys)})"

    @property
    def current_version(self) -> int:
        return max(self.keys)

    @property
    def versions(self) -> list[int]:
        return sorted(self.keys)

    def key(self, version: int) -> bytes | None:
        """The key of ``version``, or None if this keyring does not hold it."""
        return self.keys.get(version)

    def with_new_key(
        self, *, random: Random = os.urandom, now: datetime | None = None
    ) -> MasterKeyring:
        """A keyring with one more version, which becomes the one that encrypts."""
        version = self.current_version + 1
        stamp = (now or datetime.now(UTC)).isoformat()
        return MasterKeyring(
            keys={**self.keys, version: random(KEY_BYTES)},
            created={**self.created, version: stamp},
        )

    def without(self, version: int) -> MasterKeyring:
        """A keyring without ``version`` (retire it once nothing is wrapped under it)."""
        if version == self.current_version:
            raise KeyringError("the newest master key cannot be retired; rotate first")
        if version not in self.keys:
            raise KeyringError(f"master key version {version} is not in the keyring")
        return MasterKeyring(
            keys={v: k for v, k in self.keys.items() if v != version},
            created={v: c for v, c in self.created.items() if v != version},
        )

    def to_json(self) -> str:
        entries = [
            {"version": v, "created": self.created.get(v, ""), "key": self.keys[v].hex()}
            for v in self.versions
        ]
        return json.dumps({"format": KEYRING_FORMAT, "keys": entries}, indent=2) + "\n"


def new_keyring(*, random: Random = os.urandom, now: datetime | None = None) -> MasterKeyring:
    stamp = (now or datetime.now(UTC)).isoformat()
    return MasterKeyring(keys={1: random(KEY_BYTES)}, created={1: stamp})


def parse_keyring(text: str) -> MasterKeyring:
    """Read a keyring from its JSON form (or a bare hex key meaning version 1)."""
    text = text.strip()
    if not text.startswith("{"):
        try:
            return MasterKeyring(keys={1: bytes.fromhex(text)}, created={1: ""})
        except ValueError:
            raise KeyringError("the master keyring is neither JSON nor a hex key") from None
    try:
        document: Any = json.loads(text)
        if document.get("format") != KEYRING_FORMAT:
            raise KeyringError(f"unknown keyring format (expected {KEYRING_FORMAT})")
        keys: dict[int, bytes] = {}
        created: dict[int, str] = {}
        for entry in document["keys"]:
            version = int(entry["version"])
            if version in keys:
                raise KeyringError(f"master key version {version} appears twice")
            keys[version] = bytes.fromhex(entry["key"])
            created[version] = str(entry.get("created", ""))
    except KeyringError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeyringError("the master keyring is malformed") from None
    return MasterKeyring(keys=keys, created=created)


def load_keyring_file(path: Path) -> MasterKeyring:
    """Read the keyring at ``path``; refuse a file that group or others can read."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise KeyringError(f"no master keyring at {path}") from None
    if mode & 0o077:
        raise KeyringError(f"keyring {path} is readable by others (mode {mode:o}); chmod 600 it")
    return parse_keyring(path.read_text())


def write_keyring_file(path: Path, keyring: MasterKeyring, *, exclusive: bool = False) -> None:
    """Write ``keyring`` to ``path`` atomically (temp file, fsync, rename), mode 0600.

    With ``exclusive`` the write fails with :class:`FileExistsError` if ``path`` exists,
    so two processes creating a keyring at once agree on one.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(keyring.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(temp, path)  # fails if path exists: first writer wins
            os.unlink(temp)
        else:
            os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_keyring_file(path: Path, *, random: Random = os.urandom) -> MasterKeyring:
    """Read the keyring at ``path``, creating a one-key keyring (0600) if absent."""
    if not path.exists():
        with suppress(FileExistsError):
            write_keyring_file(path, new_keyring(random=random), exclusive=True)
    return load_keyring_file(path)


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    # Two rotations racing would each add "version N+1" and one would be lost, together
    # with every patient key wrapped under it; a lock file serialises them.
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rotate_keyring_file(path: Path, *, random: Random = os.urandom) -> MasterKeyring:
    """Add a new newest master key to the keyring file and return the new keyring."""
    with _exclusive_lock(path):
        keyring = load_keyring_file(path).with_new_key(random=random)
        write_keyring_file(path, keyring)
    return keyring


def retire_keyring_version(path: Path, version: int) -> MasterKeyring:
    """Remove ``version`` from the keyring file (callers first check nothing uses it)."""
    with _exclusive_lock(path):
        keyring = load_keyring_file(path).without(version)
        write_keyring_file(path, keyring)
    return keyring


class KeyringSource(Protocol):
    """Where a long-running process gets the current keyring.

    Read per operation, so a rotation done by ``vault keys rotate`` in another process is
    seen without a restart (patient keys re-wrapped under a new version stay readable).
    """

    def get(self) -> MasterKeyring: ...

    def for_version(self, version: int) -> MasterKeyring:
        """A keyring to open something wrapped under ``version`` (reads): it holds that
        version if the current keyring does, and may be up to a second old."""
        ...


@dataclass
class StaticKeyring:
    """A keyring given inline (``VAULT_MASTER_KEYRING``) or built in a test."""

    keyring: MasterKeyring

    def get(self) -> MasterKeyring:
        return self.keyring

    def for_version(self, version: int) -> MasterKeyring:
        return self.keyring


#: How long :meth:`FileKeyring.for_version` may answer without looking at the file.
READ_RECHECK_SECONDS = 1.0


class FileKeyring:
    """The keyring file, re-read whenever it changes on disk."""

    def __init__(
        self, path: Path, *, create: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keyring: MasterKeyring | None = None
        self._clock = clock
        self._checked = -math.inf  # when get() last compared the file with the loaded one
        if create:
            load_or_create_keyring_file(path)

    def get(self) -> MasterKeyring:
        """The keyring as the file has it now (one ``stat`` per call): what every write
        wraps under, so a rotation by another process is used at once."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise KeyringError(f"no master keyring at {self.path}") from None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self._keyring is None or stamp != self._stamp:
            self._keyring = load_keyring_file(self.path)
            self._stamp = stamp
        self._checked = self._clock()
        return self._keyring

    def for_version(self, version: int) -> MasterKeyring:
        """For reads: the keyring last loaded, if it holds ``version`` and was checked
        against the file less than :data:`READ_RECHECK_SECONDS` ago; else :meth:`get`.

        A version's key never changes (rotation adds one, retirement removes one), so a
        loaded keyring that holds the version opens exactly what the file's would. Every
        provider read unwraps a key, and the ``stat`` was 4% of the read at concurrency
        32; a version rotated in by another process is found at once (it is missing here,
        so the file is read), and one retired elsewhere stops opening anything in this
        process within a second.
        """
        keyring = self._keyring
        if (
            keyring is not None
            and keyring.key(version) is not None
            and self._clock() - self._checked < READ_RECHECK_SECONDS
        ):
            return keyring
        return self.get()
