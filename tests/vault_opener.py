"""Helper process for test_runtime.py: open a vault at a given moment, print what it found.

Usage: python -m tests.vault_opener   (settings from VAULT_* in the environment)

Imports first and prints ``ready``, then opens the vault when a line arrives on stdin, so
the test starts several of these on the same fresh database and chain at once; prints
one JSON line: the registry address and whether this process deployed it.
"""

from __future__ import annotations

import json
import sys

from vault.config import get_settings
from vault.runtime import open_vault


def main() -> None:
    settings = get_settings()
    print("ready", flush=True)
    sys.stdin.readline()
    vault = open_vault(settings)
    try:
        deployed = any(note.startswith("deployed ConsentRegistry") for note in vault.notes)
        print(json.dumps({"address": vault.chain.deployment.address, "deployed": deployed}))
    finally:
        vault.close()


if __name__ == "__main__":
    main()
