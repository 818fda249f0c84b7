# Glasscast: `make serve` builds and starts every role in one process; `make test` runs the
# whole test suite (installing ffmpeg and friends first when they are missing).

GO ?= go
BIN := bin/glasscast

.PHONY: build serve test deps vet fuzz fuzz-parsers fuzz-short bench

build:
	$(GO) build -o $(BIN) ./cmd/glasscast

serve: build
	./$(BIN) serve

deps:
	bash .ci/deps

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)

# Packages run one at a time (-p 1): the end-to-end tests run ffmpeg, Chromium, NATS clusters
# and several servers, and must not share two cores with another package's encoders. First every
# fuzz target runs for a few seconds, so a parser that panics on new input fails CI.
test: deps vet
	@$(MAKE) --no-print-directory fuzz-short
	$(GO) test -p 1 -count=1 -timeout 50m ./...

# Short fuzzing runs of every parser of untrusted input (fuzz-parsers, which CI runs), and of
# the packager against the timing a publisher gives its frames: early parts held to what the
# plain packager makes. Those compare two outputs under rules with exceptions, so CI runs only
# their seeds (with go test), and a new input that breaks them is a finding for a person.
FUZZTIME ?= 30s
fuzz: fuzz-parsers
	$(GO) test ./ingest/packager -run '^$$' -fuzz 'FuzzEarlyParts$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ingest/packager -run '^$$' -fuzz FuzzEarlyPartsBFrames -fuzztime $(FUZZTIME)

fuzz-parsers:
	$(GO) test ./auth -run '^$$' -fuzz FuzzSigV4 -fuzztime $(FUZZTIME)
	$(GO) test ./control -run '^$$' -fuzz FuzzOperations -fuzztime $(FUZZTIME)
	$(GO) test ./control -run '^$$' -fuzz FuzzChatOperations -fuzztime $(FUZZTIME)
	$(GO) test ./control -run '^$$' -fuzz FuzzCloudWatch -fuzztime $(FUZZTIME)
	$(GO) test ./chat/wire -run '^$$' -fuzz FuzzParseRequest -fuzztime $(FUZZTIME)
	$(GO) test ./chat/token -run '^$$' -fuzz FuzzOpen -fuzztime $(FUZZTIME)
	$(GO) test ./archive/source -run '^$$' -fuzz FuzzParseMedia -fuzztime $(FUZZTIME)
	$(GO) test ./archive/source -run '^$$' -fuzz FuzzParseMultivariant -fuzztime $(FUZZTIME)
	$(GO) test ./archive/remux -run '^$$' -fuzz FuzzRemux -fuzztime $(FUZZTIME) -fuzzminimizetime 3s
	$(GO) test ./ingest/transcode -run '^$$' -fuzz FuzzAccessUnit -fuzztime $(FUZZTIME)
	$(GO) test ./ingest/rtmp -run '^$$' -fuzz FuzzConnection -fuzztime $(FUZZTIME) -fuzzminimizetime 3s
	$(GO) test ./ingest/packager -run '^$$' -fuzz FuzzWriteH264 -fuzztime $(FUZZTIME)
	$(GO) test ./metadata -run '^$$' -fuzz FuzzParseEmsg -fuzztime $(FUZZTIME)
	$(GO) test ./metadata -run '^$$' -fuzz FuzzID3Text -fuzztime $(FUZZTIME)
	$(GO) test ./origin/push -run '^$$' -fuzz FuzzDecodeFrame -fuzztime $(FUZZTIME)
	$(GO) test ./origin/push -run '^$$' -fuzz FuzzHandler -fuzztime $(FUZZTIME)
	$(GO) test ./origin/playlist -run '^$$' -fuzz FuzzParseObjectName -fuzztime $(FUZZTIME)
	$(GO) test ./origin -run '^$$' -fuzz FuzzParseDirectives -fuzztime $(FUZZTIME)
	$(GO) test ./origin/llhlscheck -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./media -run '^$$' -fuzz FuzzParsePlaybackPath -fuzztime $(FUZZTIME)

# Every target of `make fuzz-parsers` for a few thousand inputs: a CI step that keeps them building and
# running. The budget is a count, not a duration: Go 1.26's fuzz coordinator can report its own
# -fuzztime deadline as a failure with no crasher (go.dev/issue/75804, fixed in Go 1.27), and a
# count sets no deadline. 5000 inputs take 1-10 s per target on 2 cores.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz-parsers FUZZTIME=5000x

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
