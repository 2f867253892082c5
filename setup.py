"""Wheel build hook: compile the contract into package data before the package is copied.

Everything else about the package is in pyproject.toml. A wheel must carry a compiled
ConsentRegistry matching contracts/src (a server installs it without Node.js), so the
build refreshes vault/chain/artifacts/ the way `vault` itself does (recompiling only when
the sources changed) and fails when it cannot.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithContract(build_py):  # type: ignore[misc]
    def run(self) -> None:
        if self.editable_mode:
            # An editable install reads vault/chain/artifacts/ from the checkout, where
            # load_artifact keeps it current (bootstrap compiles once node_modules exists).
            super().run()
            return
        sys.path.insert(0, str(ROOT))
        from vault.chain.compiler import PACKAGED, load_artifact

        for name in PACKAGED:
            load_artifact(ROOT, name)
        super().run()


setup(cmdclass={"build_py": BuildWithContract})
