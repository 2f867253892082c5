#!/usr/bin/env bash
# Print a SQLAlchemy URL of a throw-away PostgreSQL database for the tests.
#
# Reuses a cluster this script started earlier if it still answers; otherwise installs
# the server from Debian packages when missing (needs root and apt), creates a cluster
# under $VAULT_PG_DIR (default /tmp/vault-test-pg-$UID), starts it listening only on a
# unix socket in that directory, creates the database and prints
#   postgresql+psycopg://USER@/vault_test?host=SOCKETDIR&port=PORT
# on stdout. Everything else goes to stderr. Exits non-zero, loudly, when it cannot.
#
# Usage: export VAULT_TEST_POSTGRES_URL="$(scripts/ensure-postgres.sh)"
#        scripts/ensure-postgres.sh --stop     # stop the throw-away cluster
set -euo pipefail

PG_DIR="${VAULT_PG_DIR:-/tmp/vault-test-pg-$(id -u)}"
PG_PORT="${VAULT_PG_PORT:-54329}"
DB_NAME="vault_test"
DATA="$PG_DIR/data"
SOCKET_DIR="$PG_DIR/socket"
LOG="$PG_DIR/postgres.log"

fail() {
  {
    echo "################################################################################"
    echo "## ensure-postgres: $*"
    if [[ "${CI:-}" == "true" || "${VAULT_REQUIRE_POSTGRES:-}" == "1" ]]; then
      echo "## PostgreSQL is required here (CI or VAULT_REQUIRE_POSTGRES=1): the run FAILS."
    else
      echo "## PostgreSQL tests cannot run here; they will be SKIPPED."
    fi
    echo "################################################################################"
  } >&2
  exit 1
}

find_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
  [[ "$(id -u)" == 0 ]] || fail "PostgreSQL server is not installed and we are not root to apt-get it"
  command -v apt-get >/dev/null || fail "PostgreSQL server is not installed and apt-get is missing"
  echo "ensure-postgres: installing the PostgreSQL server from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }) \
    || fail "apt-get install postgresql failed"
  BINDIR="$(find_bindir || true)"
  [[ -n "$BINDIR" ]] || fail "postgresql installed but no server binaries under /usr/lib/postgresql"
fi

# initdb and postgres refuse to run as root: run them as the 'postgres' system user.
if [[ "$(id -u)" == 0 ]]; then
  id postgres >/dev/null 2>&1 || fail "running as root but there is no 'postgres' user"
  DB_USER="postgres"
  as_db_user() { runuser -u postgres -- "$@"; }
else
  DB_USER="$(id -un)"
  as_db_user() { "$@"; }
fi

if [[ "${1:-}" == "--stop" ]]; then
  [[ -d "$DATA" ]] && as_db_user "$BINDIR/pg_ctl" -D "$DATA" -m fast stop >&2 || true
  exit 0
fi

ready() { "$BINDIR/pg_isready" -q -h "$SOCKET_DIR" -p "$PG_PORT" >/dev/null 2>&1; }

if ! ready; then
  mkdir -p "$PG_DIR"
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$PG_DIR"; fi
  chmod 700 "$PG_DIR"
  if [[ ! -s "$DATA/PG_VERSION" ]]; then
    rm -rf "$DATA"
    as_db_user "$BINDIR/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; fail "initdb failed"; }
  fi
  as_db_user mkdir -p "$SOCKET_DIR"
  # Throw-away test cluster: no TCP, socket only; fsync off for speed (data is disposable).
  as_db_user "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 30 \
    -o "-c listen_addresses='' -c unix_socket_directories='$SOCKET_DIR' -p $PG_PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2 || { tail -20 "$LOG" >&2 || true; fail "pg_ctl start failed (see $LOG)"; }
fi
ready || fail "PostgreSQL started but does not answer on $SOCKET_DIR port $PG_PORT"

exists="$("$BINDIR/psql" -h "$SOCKET_DIR" -p "$PG_PORT" -U "$DB_USER" -d postgres -Atc \
  "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" || fail "cannot query the cluster"
if [[ "$exists" != "1" ]]; then
  "$BINDIR/psql" -h "$SOCKET_DIR" -p "$PG_PORT" -U "$DB_USER" -d postgres -qc "CREATE DATABASE $DB_NAME" >&2 \
    || fail "CREATE DATABASE failed"
fi

echo "postgresql+psycopg://$DB_USER@/$DB_NAME?host=$SOCKET_DIR&port=$PG_PORT"
