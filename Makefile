# Glasscast: `make serve` builds and starts every role in one process; `make test` runs the
# whole test suite (installing ffmpeg and friends first when they are missing).

GO ?= go
BIN := bin/glasscast

.PHONY: build serve test deps vet fuzz bench

build:
	$(GO) build -o $(BIN) ./cmd/glasscast

serve: build
	./$(BIN) serve

deps:
	bash .ci/deps

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)

test: deps vet
	$(GO) test -count=1 -timeout 40m ./...

# Short fuzzing runs of every parser of untrusted input.
fuzz:
	$(GO) test ./auth -run '^$$' -fuzz FuzzSigV4 -fuzztime 30s
	$(GO) test ./control -run '^$$' -fuzz FuzzOperations -fuzztime 30s

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
