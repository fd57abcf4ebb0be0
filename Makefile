# The test command of README.md is `make test`. It installs the real peers the
# interop tests drive (Debian packages, only when missing) and runs every test.
GO ?= go

.PHONY: test peers build fuzz

build:
	$(GO) build -o ode ./cmd/ode

peers:
	bash test/interop/install-peers.sh

test: peers
	$(GO) test -race -timeout 15m ./...

# fuzz runs every fuzz target for FUZZTIME each (CI uses this).
FUZZTIME ?= 20s
fuzz:
	bash .ci/fuzz.sh $(FUZZTIME)
