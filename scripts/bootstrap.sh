#!/usr/bin/env bash
# Idempotent set-up: a project virtualenv with the pinned Python packages, the pinned
# npm toolchain (anvil, forge, solc-js, OpenZeppelin, forge-std), and the contract
# build. Quick when nothing changed: each step is skipped while its stamp is newer
# than its lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: $1 is required but not installed ($2)" >&2; exit 1; }; }
need "$PYTHON" "install Python 3.11+"
need node "install Node.js 20+ (apt-get install nodejs npm)"
need npm "install npm"

stale() { # stale STAMP FILE... : true when STAMP is missing or older than any FILE
  local stamp=$1; shift
  [ -f "$stamp" ] || return 0
  for f in "$@"; do [ "$f" -nt "$stamp" ] && return 0; done
  return 1
}

if stale .bootstrap-python.stamp requirements.lock requirements-dev.lock requirements-nodeps.lock pyproject.toml; then
  echo "bootstrap: installing Python packages into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "pip>=24"
  # Runtime pins (requirements.lock) and the developer's test, bench and dev extras
  # (requirements-dev.lock), resolved together. face_recognition declares a dependency
  # on dlib (a slow source build); dlib-bin in requirements.lock provides the same
  # module prebuilt, so install it without deps.
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements-nodeps.lock
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  touch .bootstrap-python.stamp
fi

if stale .bootstrap-npm.stamp package.json package-lock.json || [ ! -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ]; then
  echo "bootstrap: installing the npm toolchain"
  # `npm ci` refuses this lock: the anvil/forge packages list optional binaries for other
  # platforms that the lock cannot hold. `npm install` with the committed lock and exact
  # versions in package.json installs the same tree.
  npm install --no-audit --no-fund --loglevel=error
  touch .bootstrap-npm.stamp
fi

# Compile the contract from source with the pinned compiler into the package data
# (vault/chain/artifacts/, which a server without Node.js uses); skipped when the
# artifact there was compiled from the same sources.
"$VENV/bin/python" -c "from pathlib import Path; from vault.chain.compiler import load_artifact; load_artifact(Path('.'))"
