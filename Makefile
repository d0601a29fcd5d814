# The two commands a newcomer needs: `make run` and `make test`.
# Everything else they need is fetched here: Go modules from the module
# proxy, the ClickHouse engine (chDB) from the npm registry.

SHELL := /bin/bash
GO    ?= go

# The engine is pinned: version and tarball checksum. The programs check the
# library's own checksum again at start (internal/engine/library.go).
CHDB_PACKAGE        := @chdb/lib-linux-x64-gnu
CHDB_VERSION        := 26.5.3
CHDB_TARBALL_SHA256 := b874e449710950da3abd7e20376f7bb3387d9e03adcc7082f022be18dfdf316a
CACHE_HOME          ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
CHDB_LIB            := $(CACHE_HOME)/ikd/chdb/$(CHDB_VERSION)/libchdb.so

PROGRAMS := ikd-dev ikd-counter ikd-aggregator ikd-alerter ikd-papan
TEST_TIMEOUT ?= 15m

.PHONY: deps install-chromium install-prometheus check-prometheus build run test bench chaos fuzz vet clean verify-systemd diskfull

deps: $(CHDB_LIB) .go-mod-downloaded
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || $(MAKE) --no-print-directory install-chromium
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || $(MAKE) --no-print-directory install-prometheus

# The browser tests of the attainment board drive a headless Chromium, Debian's
# package (apt-get as root, else through sudo).
install-chromium:
	@command -v apt-get >/dev/null || { echo "the browser tests need Chromium: install it with your system's package manager"; exit 1; }
	@echo "installing Chromium (Debian package chromium) for the browser tests"
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium >/dev/null

# The scrape check of `make test` runs a real Prometheus, and check-prometheus
# its promtool: Debian's package prometheus has both (apt-get as root, else
# through sudo; no recommended exporters, and no service is started).
install-prometheus:
	@command -v apt-get >/dev/null || { echo "the scrape check needs prometheus and promtool: install them with your system's package manager"; exit 1; }
	@echo "installing Prometheus (Debian package prometheus) for the scrape check and promtool"
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# The alerting rules: syntax and their unit tests, with promtool.
check-prometheus:
	@command -v promtool >/dev/null || $(MAKE) --no-print-directory install-prometheus
	cd deploy/prometheus && promtool check rules ikd.rules.yml && promtool test rules ikd.rules.test.yml && promtool check config prometheus.yml

.go-mod-downloaded: go.mod go.sum
	@$(GO) mod download
	@touch $@

$(CHDB_LIB):
	@command -v npm >/dev/null || { echo "npm is needed to fetch the ClickHouse engine ($(CHDB_PACKAGE)); install Node.js/npm"; exit 1; }
	@echo "fetching the ClickHouse engine: $(CHDB_PACKAGE)@$(CHDB_VERSION) (166 MB) into $(dir $@)"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  npm pack --silent --pack-destination "$$tmp" "$(CHDB_PACKAGE)@$(CHDB_VERSION)" >/dev/null && \
	  tarball=$$(ls "$$tmp"/*.tgz) && \
	  echo "$(CHDB_TARBALL_SHA256)  $$tarball" | sha256sum --check --quiet - && \
	  tar -xzf "$$tarball" -C "$$tmp" package/libchdb.so && \
	  mkdir -p "$(dir $@)" && mv "$$tmp/package/libchdb.so" "$@.partial" && mv "$@.partial" "$@"

build: deps
	@mkdir -p bin
	$(GO) build -o bin/ ./deploy/ikd-dev ./producers/ikd-counter ./consumers/ikd-aggregator ./consumers/ikd-alerter ./consumers/ikd-papan

run: build
	./bin/ikd-dev

vet:
	$(GO) vet ./...

# Unit and integration tests against the real embedded broker and engine,
# including the committed fuzz corpora and the short version of each fault test.
test: deps vet check-prometheus
	$(GO) test -short -timeout $(TEST_TIMEOUT) ./...

# The fault tests at full size: 100,000 events through each fault of the
# single broker (consumers/faults), and through the faults of the 3-node
# NATS cluster (consumers/clusterfaults); one package at a time.
chaos: deps
	IKD_CHAOS=1 $(GO) test -p 1 -timeout 90m -run 'Fault' -v ./consumers/faults/ ./consumers/clusterfaults/

# Longer fuzzing of decoding and validation (FUZZTIME each).
FUZZTIME ?= 2m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzBuild$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzRedact$$' -fuzztime $(FUZZTIME) ./internal/nik/

# Performance against the broker's and the engine's own ceilings; not part of `make test`.
bench: deps
	$(GO) run ./deploy/ikd-bench $(BENCH_FLAGS)

# The office agent on a really full disk: a small tmpfs, so it needs root.
diskfull: deps
	IKD_DISKFULL=1 $(GO) test -count=1 -run 'FullDisk' -v ./producers/agent/

# Checks the office agent's systemd unit with systemd-analyze (Debian:
# apt-get install systemd), against the binary built here: any warning fails.
verify-systemd: build
	@command -v systemd-analyze >/dev/null || { echo "systemd-analyze is needed: apt-get install systemd"; exit 1; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  sed 's#/usr/local/bin/ikd-counter#$(CURDIR)/bin/ikd-counter#' deploy/systemd/ikd-counter-agent.service > "$$tmp/ikd-counter-agent.service" && \
	  out=$$(systemd-analyze verify "$$tmp/ikd-counter-agent.service" 2>&1) && test -z "$$out" || { echo "$$out"; exit 1; } && \
	  systemd-analyze security --offline=true "$$tmp/ikd-counter-agent.service" | tail -1 && \
	  echo "deploy/systemd/ikd-counter-agent.service: verified"

clean:
	rm -rf bin var .go-mod-downloaded
