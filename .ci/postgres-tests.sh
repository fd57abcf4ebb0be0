#!/usr/bin/env bash
# The server's integration tests again, on PostgreSQL: one throwaway
# server (pgserve, Debian's postgresql installed by install-peers.sh) for
# the whole run, each test server in its own schema (xmpptest's
# ODE_TEST_POSTGRES). The storage conformance suite runs on both backends
# in `make test` already.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pgserve" ./internal/storage/postgres/pgtest/pgserve
coproc PG { exec "$bin/pgserve"; }
pg_pid=$PG_PID
if ! read -r dsn <&"${PG[0]}"; then
	echo "postgres-tests: pgserve did not start" >&2
	exit 1
fi
status=0
ODE_TEST_POSTGRES="$dsn" go test -race -timeout 15m ./internal/c2s ./internal/modules/... ./internal/server ./internal/s2s || status=$?
exec {PG[1]}>&- # end of input: pgserve stops the server and removes it
wait "$pg_pid" || true
exit "$status"
