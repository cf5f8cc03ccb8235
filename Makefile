# KalamDB-Go — one command per task. Every Go command runs over the whole
# workspace through the `work` package pattern (Go 1.25+).

SHELL     := bash
GO        ?= go
BENCHTIME ?= 1s
COUNT     ?= 6
FUZZTIME  ?= 60s
CONFIG    ?= config.toml

.PHONY: all deps build run test modules examples tidy vet fmt bench fuzz clean

all: test

## deps: install what the build needs (librocksdb-dev and friends from Debian).
deps:
	@bash scripts/deps.sh

# The version and commit stamped into the binary (kalamdb-server --version).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
CLI_PKG   := github.com/kalamdb/kalamdb-go/kalamdb-server/internal/cli
LDFLAGS   := -X $(CLI_PKG).Version=$(VERSION) -X $(CLI_PKG).Commit=$(COMMIT)

## build: compile every module and the server binary into ./bin.
build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/kalamdb-server ./kalamdb-server/cmd/kalamdb-server

## run: build and run the server on the committed config.toml (RocksDB under ./data).
run: build
	./bin/kalamdb-server serve --config $(CONFIG)

MODULES := kalamdb-store kalamdb-core kalamdb-server .
# The example modules, each outside go.work: built the way a third party's
# module is, with GOWORK=off and replace lines to this checkout.
EXAMPLES := $(patsubst %/go.mod,%,$(wildcard examples/*/go.mod))

## test: gofmt check, vet, each module on its own, the race-enabled tests of every module, then the examples.
test: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet work
	@$(MAKE) --no-print-directory modules
	@echo "$(GO) test -race -count=1 -timeout 40m work"
	@set -o pipefail; $(GO) test -race -count=1 -timeout 40m work 2>&1 | tee test.log || { bash scripts/failures.sh test.log; exit 1; }
	@$(MAKE) --no-print-directory examples

## examples: vet and race-test every module under examples/ on its own (GOWORK=off).
examples:
	@for m in $(EXAMPLES); do \
	  echo "testing $$m"; \
	  (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -race -count=1 -timeout 20m ./...) || exit 1; \
	done

## modules: every module, the examples' too, is tidy and builds alone (GOWORK=off), through its replace lines.
modules:
	@for m in $(MODULES) $(EXAMPLES); do \
	  (cd $$m && GOWORK=off $(GO) mod tidy -diff && GOWORK=off $(GO) vet ./...) || \
	  { echo "module $$m is not tidy or does not build on its own (GOWORK=off); run make tidy"; exit 1; }; \
	done

## tidy: go mod tidy in every module on its own, the examples' too (after adding or upgrading a dependency).
tidy:
	@for m in $(MODULES) $(EXAMPLES); do \
	  echo "tidying $$m"; (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; \
	done

vet:
	$(GO) vet work

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: the storage benchmarks, -count $(COUNT), with backend/direct ratios.
bench: deps
	@bash scripts/bench.sh

## fuzz: run each fuzz target for $(FUZZTIME).
fuzz: deps
	@bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin data

.PHONY: bench-server

## bench-server: load-test the real server over loopback on RocksDB (single-row
## insert and key lookup latency at concurrency 1, throughput at 8 clients),
## beside a trivial net/http JSON handler measured in the same run.
bench-server: build
	$(GO) run ./tools/bench-server -binary bin/kalamdb-server -count $(COUNT) -out bin/bench-server.txt

.PHONY: bench-servers

## bench-servers: the same over 1, 2 and 3 servers on one 3-member etcd cluster
## and on one redis-server (flush off), beside one server on RocksDB.
bench-servers: build
	$(GO) run ./tools/bench-server -binary bin/kalamdb-server -topology servers -duration 1s -count $(COUNT) -out bin/bench-servers.txt

.PHONY: greedy

## greedy: the real server against a greedy client: rows of 8 MiB listed by
## 8 clients at once, and thousands of idle connections from one address;
## it reports the largest response and peak memory (not part of make test).
greedy: build
	$(GO) run ./tools/greedy -binary bin/kalamdb-server

.PHONY: diskfull

## diskfull: the real server with storage.parquet_dir on a full 2 MiB tmpfs
## stays up, reports it, and flushes once there is space (needs root to
## mount; not part of make test; about half a minute).
diskfull:
	@bash scripts/diskfull.sh
