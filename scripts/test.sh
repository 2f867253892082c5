#!/usr/bin/env bash
# The whole test suite: the contract's Foundry tests, lint and types, then pytest
# against SQLite and PostgreSQL (skipped, loudly, when PostgreSQL cannot be started here,
# except under CI, where that is an error).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== forge test (contracts, offline with the pinned solc-js)"
(cd contracts && FOUNDRY_PROFILE=${FOUNDRY_PROFILE:-default} ../node_modules/@foundry-rs/forge-linux-amd64/bin/forge test)

echo "== ruff + mypy"
.venv/bin/ruff check vault tests
.venv/bin/ruff format --check vault tests
.venv/bin/mypy vault tests

# CI (the runner sets CI=true) must test both databases: there, and with
# VAULT_REQUIRE_POSTGRES=1, a PostgreSQL that cannot be started fails the run, and pytest
# fails (instead of skipping) the PostgreSQL variants if the URL is still missing.
if [ "${CI:-}" = "true" ]; then
  export VAULT_REQUIRE_POSTGRES=1
fi
if [ -z "${VAULT_TEST_POSTGRES_URL:-}" ]; then
  if url=$(scripts/ensure-postgres.sh); then
    export VAULT_TEST_POSTGRES_URL="$url"
  elif [ "${VAULT_REQUIRE_POSTGRES:-}" = "1" ]; then
    echo "!! PostgreSQL could not be started and is required (CI or VAULT_REQUIRE_POSTGRES=1)" >&2
    exit 1
  else
    echo "!! PostgreSQL could not be started here: PostgreSQL tests will be SKIPPED" >&2
  fi
fi

echo "== pytest"
exec .venv/bin/pytest "$@"
