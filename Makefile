# Blueshift. `make demo` shows it working; `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
BIN := bin/blueshift

.PHONY: all build test vet staticcheck unit cross demo bench bench-quick proto tools fmt

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
	$(GO) test -race -timeout 20m ./...

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
