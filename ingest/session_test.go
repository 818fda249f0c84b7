package ingest

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"glasscast/metadata"
)

func testSession() *Session {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &broadcast{log: log, limiter: rate.NewLimiter(metadata.RatePerSecond, metadata.RatePerSecond)}
	return &Session{b: b, log: log}
}

// TestPendingCuesBounded: cues that arrive before the packager exists are held up to
// maxPendingCues, the oldest dropped first.
func TestPendingCuesBounded(t *testing.T) {
	s := testSession()
	for i := range maxPendingCues + 4 {
		s.addCue("cue-" + strconv.Itoa(i))
	}
	if len(s.pending) != maxPendingCues {
		t.Fatalf("%d cues pending, want %d", len(s.pending), maxPendingCues)
	}
	if first, last := s.pending[0].Text, s.pending[len(s.pending)-1].Text; first != "cue-4" || last != "cue-"+strconv.Itoa(maxPendingCues+3) {
		t.Fatalf("pending cues run from %s to %s; want the newest kept", first, last)
	}
}

// TestInbandRules: in-band cues obey PutMetadata's size and rate rules, and spend the budget
// PutMetadata draws from.
func TestInbandRules(t *testing.T) {
	s := testSession()
	for _, bad := range []string{strings.Repeat("x", metadata.MaxBytes+1), "\xff\xfe"} {
		if s.AddCue(bad) == nil {
			t.Errorf("in-band cue of %d bytes accepted", len(bad))
		}
	}
	if len(s.pending) != 0 {
		t.Fatalf("oversize or invalid in-band metadata was kept: %d cues", len(s.pending))
	}
	for i := range 20 {
		_ = s.AddCue("burst-" + strconv.Itoa(i))
	}
	if n := len(s.pending); n < metadata.RatePerSecond || n > metadata.RatePerSecond+1 {
		t.Fatalf("%d of 20 cues sent at once were kept; want %d", n, metadata.RatePerSecond)
	}
	if s.b.limiter.Allow() {
		t.Fatal("the burst did not spend the channel's PutMetadata budget")
	}
}
