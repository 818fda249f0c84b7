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

# Packages run one at a time (-p 1): the end-to-end tests run ffmpeg, Chromium and several
# servers, and latency assertions (a part reaching 100 viewers within 50 ms) must not share two
# cores with another package's encoders.
test: deps vet
	$(GO) test -p 1 -count=1 -timeout 45m ./...

# Short fuzzing runs of every parser of untrusted input.
fuzz:
	$(GO) test ./auth -run '^$$' -fuzz FuzzSigV4 -fuzztime 30s
	$(GO) test ./control -run '^$$' -fuzz FuzzOperations -fuzztime 30s
	$(GO) test ./control -run '^$$' -fuzz FuzzChatOperations -fuzztime 30s
	$(GO) test ./control -run '^$$' -fuzz FuzzCloudWatch -fuzztime 30s
	$(GO) test ./chat/wire -run '^$$' -fuzz FuzzParseRequest -fuzztime 30s
	$(GO) test ./chat/token -run '^$$' -fuzz FuzzOpen -fuzztime 30s
	$(GO) test ./archive/source -run '^$$' -fuzz FuzzParseMedia -fuzztime 30s
	$(GO) test ./archive/source -run '^$$' -fuzz FuzzParseMultivariant -fuzztime 30s
	$(GO) test ./archive/remux -run '^$$' -fuzz FuzzRemux -fuzztime 30s -fuzzminimizetime 3s
	$(GO) test ./ingest/transcode -run '^$$' -fuzz FuzzAccessUnit -fuzztime 30s
	$(GO) test ./ingest -run '^$$' -fuzz FuzzConnection -fuzztime 30s -fuzzminimizetime 3s
	$(GO) test ./ingest/packager -run '^$$' -fuzz FuzzWriteH264 -fuzztime 30s
	$(GO) test ./metadata -run '^$$' -fuzz FuzzParseEmsg -fuzztime 30s
	$(GO) test ./metadata -run '^$$' -fuzz FuzzID3Text -fuzztime 30s
	$(GO) test ./origin/push -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 30s
	$(GO) test ./origin/push -run '^$$' -fuzz FuzzHandler -fuzztime 30s
	$(GO) test ./origin/playlist -run '^$$' -fuzz FuzzParseObjectName -fuzztime 30s
	$(GO) test ./origin -run '^$$' -fuzz FuzzParseDirectives -fuzztime 30s
	$(GO) test ./origin/llhlscheck -run '^$$' -fuzz FuzzParse -fuzztime 30s

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
