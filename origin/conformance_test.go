package origin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"glasscast/origin"
	"glasscast/origin/llhlscheck"
	"glasscast/origin/origintest"
)

// runChecklist runs every row of reference/llhls.md that applies to an origin alone, in the
// order their phases require: rows that only watch the stream concurrently, then the row that
// stalls the publisher (D8), then the row that ends the broadcast (D5). notApplicable lists the
// rows expected to report llhlscheck.ErrNotApplicable; every other row must pass.
func runChecklist(t *testing.T, s *liveStream, notApplicable ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	target := &llhlscheck.Target{
		Client: s.srv.Client(),
		URL:    s.url(),
		Stall: func(context.Context) (func(context.Context) error, error) {
			err := s.stop()
			return func(context.Context) error { s.run(); return nil }, err
		},
		End: func(ctx context.Context) error {
			if err := s.stop(); err != nil {
				return err
			}
			return s.pub.Close(ctx)
		},
	}
	skip := map[string]bool{}
	for _, id := range notApplicable {
		skip[id] = true
	}
	run := func(t *testing.T, c llhlscheck.Check) {
		err := c.Run(ctx, target)
		switch {
		case errors.Is(err, llhlscheck.ErrNotApplicable) && skip[c.ID]:
			t.Skip(err)
		case err != nil:
			t.Fatalf("%s (%s): %v", c.ID, c.Title, err)
		case skip[c.ID]:
			t.Fatalf("%s passed, expected not applicable", c.ID)
		}
	}
	checks := llhlscheck.Checks()
	t.Run("live", func(t *testing.T) {
		for _, c := range checks {
			if c.Phase == llhlscheck.Live {
				t.Run(c.ID, func(t *testing.T) {
					t.Parallel()
					run(t, c)
				})
			}
		}
	})
	for _, phase := range []llhlscheck.Phase{llhlscheck.Stalling, llhlscheck.Ending} {
		for _, c := range checks {
			if c.Phase == phase {
				t.Run(c.ID, func(t *testing.T) { run(t, c) })
			}
		}
	}
}

// TestConformance runs the LL-HLS checklist (P1–P19, D1–D13) against a low-latency stream with
// two renditions, timed metadata, ad breaks (date ranges that share an ID across segments,
// EXT-X-CUE-OUT/IN) and a full window, over real HTTP.
func TestConformance(t *testing.T) {
	t.Parallel()
	s := startStream(t, origin.Config{DateRanges: true}, origintest.Config{Backfill: 14, CueEvery: 3, AdBreakEvery: 4})
	s.run()
	// D10 applies only to servers without delta updates: TestConformanceWithoutDeltas.
	runChecklist(t, s, "D10")
}

// TestConformanceWithoutDeltas covers D10: _HLS_skip is ignored when CAN-SKIP-UNTIL is not
// advertised.
func TestConformanceWithoutDeltas(t *testing.T) {
	t.Parallel()
	s := startStream(t, origin.Config{DisableDeltaUpdates: true}, origintest.Config{Backfill: 8})
	s.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := &llhlscheck.Target{Client: s.srv.Client(), URL: s.url()}
	for _, id := range []string{"D10", "P7", "P18"} {
		c, _ := llhlscheck.Lookup(id)
		if err := c.Run(ctx, target); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	c, _ := llhlscheck.Lookup("D9")
	if err := c.Run(ctx, target); !errors.Is(err, llhlscheck.ErrNotApplicable) {
		t.Errorf("D9 without CAN-SKIP-UNTIL: %v, want not applicable", err)
	}
}

// TestConformanceNormal runs the checklist against a NORMAL-latency stream: rows about parts
// do not apply, every other row must pass.
func TestConformanceNormal(t *testing.T) {
	t.Parallel()
	s := startStream(t, origin.Config{}, origintest.Config{Normal: true, Backfill: 10})
	s.run()
	runChecklist(t, s, "P1", "P2", "P3", "P5", "P11", "P12", "P14", "D2", "D3", "D10", "D11")
}

// TestConformancePartHoldBackMinimum: with PART-HOLD-BACK at the spec's minimum of two part
// targets, P5's MUST half holds and only its recommendation (three) fails; the rows that read
// EXT-X-SERVER-CONTROL and PART-INF still pass. PART-HOLD-BACK changes nothing else the
// checklist looks at, so the rest is left to TestConformance.
func TestConformancePartHoldBackMinimum(t *testing.T) {
	s := startStream(t, origin.Config{PartHoldBack: 2}, origintest.Config{Backfill: 14})
	s.run()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	target := &llhlscheck.Target{Client: s.srv.Client(), URL: s.url()}
	for _, id := range []string{"P1", "P4", "P5", "P8", "P18"} {
		c, _ := llhlscheck.Lookup(id)
		err := c.Run(ctx, target)
		switch {
		case id == "P5" && (err == nil || !strings.Contains(err.Error(), "(SHOULD)")):
			t.Errorf("P5 at two part targets: %v, want only the SHOULD to fail", err)
		case id != "P5" && err != nil:
			t.Errorf("%s (%s): %v", id, c.Title, err)
		}
	}
}
