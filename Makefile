# Blueshift. `make demo` shows it working; `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
BIN := bin/blueshift

.PHONY: all build test vet staticcheck unit cross demo bench bench-quick faults faults-quick fuzz-quick proto tools fmt

all: build

build:
	$(GO) build -o $(BIN) ./cmd/blueshift

# The whole suite: formatting, vet, staticcheck, then every test with the race
# detector (the engine, peer and watcher packages are all concurrent).
test: fmt-check vet staticcheck cross unit

# The binary must build for Windows and macOS too: Linux-only calls live
# behind build tags with a fallback (sync/apply/internal/posix).
cross:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/blueshift
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/blueshift

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') 2>/dev/null | grep -v '\.pb\.go$$' || true); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck: $(GOBIN)/staticcheck
	$(GOBIN)/staticcheck ./...

$(GOBIN)/staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

unit:
	$(GO) test -race -timeout 30m -parallel 4 ./...

# Regenerate the protobuf code (committed; this target makes it reproducible).
proto: $(GOBIN)/protoc-gen-go
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	for f in $$(git ls-files '*.proto' 2>/dev/null || find . -name '*.proto'); do \
		PATH=$(GOBIN):$$PATH protoc --go_out=. --go_opt=paths=source_relative $$f || exit 1; \
	done

$(GOBIN)/protoc-gen-go:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

demo: build
	./cmd/demo/demo.sh $(BIN)

# Whole-system benchmark: Blueshift against rsync and Syncthing (issue 8; needs
# root). BENCH_FLAGS passes flags to cmd/bench (e.g. -scenarios 1,3 or
# -blueshift=false for the baselines alone); results land in bench/results/.
BENCH_FLAGS ?=
bench:
	$(GO) run ./cmd/bench $(BENCH_FLAGS)

bench-quick:
	$(GO) run ./cmd/bench -quick $(BENCH_FLAGS)

# The fault suite (issue 13; needs root): real daemons under kill -9, a full
# disk, lossy, cut and stalled links, a hostile member and users editing
# during a pull; cmd/faults prints what it did and checked and exits 1 if a
# check failed. `faults` is the long tier (20+ kills of each kind); CI runs
# `faults-quick` (a few runs of everything, small data), which first runs
# every fuzz target briefly. FAULTS_FLAGS passes flags (-scenarios, -seed, -keep).
FAULTS_FLAGS ?=
faults: build
	$(GO) run ./cmd/faults -bin $(BIN) $(FAULTS_FLAGS)

faults-quick: build fuzz-quick
	$(GO) run ./cmd/faults -quick -bin $(BIN) $(FAULTS_FLAGS)

# Every fuzz target in the repository for FUZZTIME each. A crasher makes it
# fail and is left in the package's testdata/fuzz/NAME/, where `go test`
# replays it from then on: commit it with the fix, as a regression input.
# Go's fuzzing coordinator can end a run with a bare "context deadline
# exceeded" and no crasher when a loaded machine starves a worker at the
# -fuzztime boundary (a race in the coordinator, not in the target): such a
# run is told apart by writing no new input and is run once more; a second
# failure of any kind fails.
FUZZTIME ?= 5s
fuzz-quick:
	@logs=$$(mktemp -d); failed=""; \
	fuzz1() { $(GO) test -run '^$$' -fuzz "^$$2\$$" -fuzztime $(FUZZTIME) ./$$1 >$$logs/$$2.log 2>&1; }; \
	crashers() { ls $$1/testdata/fuzz/$$2 2>/dev/null | wc -l; }; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		d=$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$d $$t for $(FUZZTIME)"; before=$$(crashers $$d $$t); \
			fuzz1 $$d $$t && continue; \
			if [ "$$(crashers $$d $$t)" = "$$before" ] && grep -q 'context deadline exceeded' $$logs/$$t.log; then \
				echo "  $$t: the coordinator's deadline race, no input written: once more"; \
				fuzz1 $$d $$t && continue; \
			fi; \
			cat $$logs/$$t.log; failed="$$failed $$t"; \
		done; \
	done; rm -rf $$logs; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed (their crashers are in testdata/fuzz/)"; exit 1; fi
