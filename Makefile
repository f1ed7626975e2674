# Course delivery worker: developer targets. `make` alone lists them.
#
# test, bench and fuzz run against the project's own Redis and MariaDB
# (scripts/services.sh), installed with apt-get when missing (as root) and started
# on private ports; their addresses reach the tests through `scripts/services.sh env`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
CONFIG   ?= configs/worker.example.yaml
FUZZTIME ?= 20s
SERVICES := scripts/services.sh
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/golangci-lint
# Prefix of a recipe line that needs the services' variables (TEST_REDIS_ADDR, ...).
WITH_SERVICES_ENV = eval "$$($(SERVICES) env)";

.PHONY: help build run demo test test-race test-faults bench bench-go fuzz lint services services-stop clean

help: ## list the targets
	@echo "Targets:"
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## build bin/worker, bin/workerctl and bin/fakeapp (the demo's stand-in web app)
	$(GO) build -o bin/worker ./cmd/worker
	$(GO) build -o bin/workerctl ./cmd/workerctl
	$(GO) build -o bin/fakeapp ./cmd/fakeapp

run: build ## build, then run bin/worker --config configs/worker.example.yaml (or CONFIG=...)
	bin/worker --config $(CONFIG)

demo: ## one purchase end to end on this machine (scripts/demo.sh)
	scripts/demo.sh

test: services ## go test -race every package against the real services
	$(WITH_SERVICES_ENV) $(GO) test -race -count=1 -timeout 15m ./...

test-race: test ## same as test (the tests always run with -race)

# The fault tests start their own redis-server and mariadbd (make services installs
# them); `make test` runs them too, as part of ./...
test-faults: services ## fault tests: kill -9, SIGTERM, Redis and MariaDB restarts, webhook outage, Sentinel failovers
	$(WITH_SERVICES_ENV) $(GO) test -race -count=1 -timeout 10m -v -run . ./internal/faults/

bench: services ## the performance figures (cmd/bench, under 5 min): a table, then BENCH <name> <value> <unit> lines
	$(GO) build -o bin/worker ./cmd/worker
	$(GO) build -o bin/workerctl ./cmd/workerctl
	$(GO) build -o bin/bench ./cmd/bench
	$(WITH_SERVICES_ENV) bin/bench -worker bin/worker -workerctl bin/workerctl

bench-go: services ## the packages' go test micro-benchmarks (-benchtime 3x)
	$(WITH_SERVICES_ENV) $(GO) test -run '^$$' -bench . -benchtime 3x ./...

fuzz: services ## run each Fuzz target for FUZZTIME (default 20s)
	@$(WITH_SERVICES_ENV) found=0; \
	for f in $$(grep -rlE --include='*_test.go' '^func Fuzz[A-Z0-9_]' . || true); do \
		for name in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$$f"); do \
			found=1; \
			echo "fuzz: $$name in $$(dirname "$$f") for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$(dirname "$$f")"; \
		done; \
	done; \
	if [ $$found = 0 ]; then echo "fuzz: no Fuzz targets in the module yet"; fi

lint: $(GOLANGCI_LINT) ## gofmt -l prints nothing; go vet and golangci-lint (v2.15.0, into bin/ when missing) are clean
	@files=$$(gofmt -l .); \
	if [ -n "$$files" ]; then echo "gofmt -l: not formatted:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

# golangci-lint at the pinned version, installed into bin/ when it is missing.
$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

services: ## install (root, when missing) and start the private Redis and MariaDB
	$(SERVICES) install
	$(SERVICES) start

services-stop: ## stop the private Redis and MariaDB
	$(SERVICES) stop

clean: ## remove bin/ and .run/
	rm -rf bin .run
