package ingest

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"golang.org/x/time/rate"

	"glasscast/metadata"
)

func testPublisher() *publisher {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &broadcast{log: log, limiter: rate.NewLimiter(metadata.RatePerSecond, metadata.RatePerSecond)}
	return &publisher{b: b, log: log}
}

func textData(s string) []any { return []any{amf0.Object{{Key: "text", Value: s}}} }

// TestPendingCuesBounded: cues that arrive before the packager exists are held up to
// maxPendingCues, the oldest dropped first.
func TestPendingCuesBounded(t *testing.T) {
	p := testPublisher()
	for i := range maxPendingCues + 4 {
		p.addCue("cue-" + strconv.Itoa(i))
	}
	if len(p.pending) != maxPendingCues {
		t.Fatalf("%d cues pending, want %d", len(p.pending), maxPendingCues)
	}
	if first, last := p.pending[0].Text, p.pending[len(p.pending)-1].Text; first != "cue-4" || last != "cue-"+strconv.Itoa(maxPendingCues+3) {
		t.Fatalf("pending cues run from %s to %s; want the newest kept", first, last)
	}
}

// TestInbandRules: in-band onTextData obeys PutMetadata's size and rate rules, and spends the
// budget PutMetadata draws from.
func TestInbandRules(t *testing.T) {
	p := testPublisher()
	p.onData("onTextData", textData(strings.Repeat("x", metadata.MaxBytes+1)))
	p.onData("onCuePoint", []any{amf0.Object{{Key: "name", Value: strings.Repeat("y", metadata.MaxBytes)}}})
	p.onData("onTextData", textData("\xff\xfe"))
	if len(p.pending) != 0 {
		t.Fatalf("oversize or invalid in-band metadata was kept: %d cues", len(p.pending))
	}
	for i := range 20 {
		p.onData("onTextData", textData("burst-"+strconv.Itoa(i)))
	}
	if n := len(p.pending); n < metadata.RatePerSecond || n > metadata.RatePerSecond+1 {
		t.Fatalf("%d of 20 cues sent at once were kept; want %d", n, metadata.RatePerSecond)
	}
	if p.b.limiter.Allow() {
		t.Fatal("the burst did not spend the channel's PutMetadata budget")
	}
}
