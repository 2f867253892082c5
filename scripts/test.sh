#!/usr/bin/env bash
# The whole test suite: the contract's Foundry tests, lint and types, then pytest
# against SQLite and (when it can be started here) PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== forge test (contracts, offline with the pinned solc-js)"
(cd contracts && FOUNDRY_PROFILE=${FOUNDRY_PROFILE:-default} ../node_modules/@foundry-rs/forge-linux-amd64/bin/forge test)

echo "== ruff + mypy"
.venv/bin/ruff check vault tests
.venv/bin/ruff format --check vault tests
.venv/bin/mypy vault tests

if [ -z "${VAULT_TEST_POSTGRES_URL:-}" ] && [ -x scripts/ensure-postgres.sh ]; then
  if url=$(scripts/ensure-postgres.sh); then
    export VAULT_TEST_POSTGRES_URL="$url"
  else
    echo "!! PostgreSQL could not be started here: PostgreSQL tests will be SKIPPED" >&2
  fi
fi

echo "== pytest"
exec .venv/bin/pytest "$@"
