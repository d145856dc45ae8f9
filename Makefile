# keygate — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/keygate
# Build with the toolchain go.mod names (its `toolchain` line: the Go release
# with the latest standard-library security fixes), downloaded through the
# module proxy when the installed Go is older, even where the machine's Go
# is set to GOTOOLCHAIN=local.
export GOTOOLCHAIN := auto

.PHONY: help run build test vet lint fuzz vault clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: build ## serve and the console on the embedded file store with demo keys (no Vault needed)
	@scripts/demo.sh $(BIN)

build: ## build bin/keygate
	$(GO) build -trimpath -o $(BIN) ./cmd/keygate

.PHONY: plugin
plugin: ## build bin/keygate-vault-plugin (the Vault secrets engine, docs/vault-plugin.md) and print its SHA-256
	$(GO) build -trimpath -o bin/keygate-vault-plugin ./cmd/keygate-vault-plugin
	@sha256sum bin/keygate-vault-plugin

test: vault ## everything: vet, staticcheck, govulncheck, race tests incl. real Vault, nginx and Caddy, short fuzzing, raw-key scan
	@scripts/test.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint: ## staticcheck and govulncheck at pinned versions (cached like Vault; part of `make test`)
	@scripts/lint.sh

fuzz: ## run every fuzz target for FUZZTIME each (default 1m)
	@FUZZTIME=$${FUZZTIME:-1m} scripts/fuzz.sh

vault: ## build (once) and cache the Vault server binary the tests use
	@scripts/vault.sh >/dev/null

.PHONY: bench
bench: ## keygate beside the floor under load (ghz, real Vault): table + .run/bench/latest.{json,svg}; see BENCHMARKS.md
	@scripts/bench.sh

.PHONY: bench-coldstart
bench-coldstart: vault ## a new replica under load: valid keys denied after SERVING, without and with the warm-up (COLDSTART_KEYS=5000, real Vault); see BENCHMARKS.md
	COLDSTART_KEYS=$${COLDSTART_KEYS:-5000} COLDSTART_RATE=$${COLDSTART_RATE:-1000} $(GO) test -count=1 -timeout 10m -run '^TestColdReplica$$' -v ./cmd/keygate/

.PHONY: bench-reads
bench-reads: ## Vault reads per replica in steady state, 10 replicas x 5,000 keys, before/after --max-record-age (~25 min); see BENCHMARKS.md
	@scripts/bench-reads.sh

.PHONY: mutate
mutate: ## mutation testing (gremlins) of policy, extauthz, vault; fails under 95% killed or on an unexplained survivor (MUTATE_PKGS=policy: ~8 min a package); see docs/testing.md
	@scripts/mutate.sh

.PHONY: soak
soak: ## 10 minutes on a real Vault with key churn, every decision checked, memory flat (SOAK_DURATION, SOAK_RATE); not in `make test`
	@scripts/soak.sh

clean:
	rm -rf bin .run
