# The test command of README.md is `make test`. It installs the real peers the
# interop tests drive (Debian packages, only when missing) and runs every test.
GO ?= go

.PHONY: test peers build fuzz test-postgres

build:
	$(GO) build -o ode ./cmd/ode

peers:
	bash test/interop/install-peers.sh

test: peers
	$(GO) test -race -timeout 15m ./...

# test-postgres runs the server's integration tests on PostgreSQL (CI runs
# it after test).
test-postgres: peers
	bash .ci/postgres-tests.sh

# fuzz runs every fuzz target for FUZZTIME each (CI uses this).
FUZZTIME ?= 20s
fuzz:
	bash .ci/fuzz.sh $(FUZZTIME)
