package media_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"glasscast/media"
	"glasscast/origin"
)

var testStream = media.Stream{ChannelID: "ch", StreamID: "st-1", LowLatency: true, TargetDuration: time.Second, PartTarget: 250 * time.Millisecond}

const partsPerSegment = 4

// call is one call a recordingSink passed on.
type call struct {
	op        string // open, init, part, close
	rendition string
	gen       int
	msn       uint64
	index     int
}

// recordingSink passes calls to a real origin and records them. While down, every call fails
// as a lost connection would; while stuck, calls block until unstuck (or their context ends).
type recordingSink struct {
	o *origin.Origin

	mu    sync.Mutex
	calls []call
	down  bool
	stuck chan struct{} // non-nil: calls wait for it to close
}

var errLinkDown = errors.New("link down")

func (s *recordingSink) gate(ctx context.Context, c call) error {
	s.mu.Lock()
	down, stuck := s.down, s.stuck
	s.mu.Unlock()
	if stuck != nil {
		select {
		case <-stuck:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if down {
		return errLinkDown
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return nil
}

func (s *recordingSink) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *recordingSink) setStuck(stuck bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case stuck && s.stuck == nil:
		s.stuck = make(chan struct{})
	case !stuck && s.stuck != nil:
		close(s.stuck)
		s.stuck = nil
	}
}

func (s *recordingSink) recorded() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

func (s *recordingSink) Open(ctx context.Context, st media.Stream) (media.Broadcast, error) {
	if err := s.gate(ctx, call{op: "open"}); err != nil {
		return nil, err
	}
	bc, err := s.o.Open(ctx, st)
	if err != nil {
		return nil, err
	}
	return &recordingBroadcast{s, bc}, nil
}

type recordingBroadcast struct {
	s  *recordingSink
	bc media.Broadcast
}

func (b *recordingBroadcast) Init(ctx context.Context, r media.Rendition, init []byte) error {
	if err := b.s.gate(ctx, call{op: "init", rendition: r.Name, gen: r.Generation}); err != nil {
		return err
	}
	return b.bc.Init(ctx, r, init)
}

func (b *recordingBroadcast) Part(ctx context.Context, rendition string, p media.Part) error {
	if err := b.s.gate(ctx, call{op: "part", rendition: rendition, msn: p.MSN, index: p.Index}); err != nil {
		return err
	}
	return b.bc.Part(ctx, rendition, p)
}

func (b *recordingBroadcast) Close(ctx context.Context) error {
	if err := b.s.gate(ctx, call{op: "close"}); err != nil {
		return err
	}
	return b.bc.Close(ctx)
}

func newOrigin(t *testing.T) *origin.Origin {
	o := origin.New(origin.Config{})
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// publisher writes numbered parts of two renditions into a broadcast.
type publisher struct {
	t   *testing.T
	bc  media.Broadcast
	n   int // parts written
	gen int
}

func (p *publisher) init() {
	for _, name := range []string{"hi", "lo"} {
		r := media.Rendition{Name: name, Codecs: "avc1.64001f", Bandwidth: 1e6, Generation: p.gen}
		if err := p.bc.Init(context.Background(), r, []byte(fmt.Sprintf("init %s %d", name, p.gen))); err != nil {
			p.t.Fatal(err)
		}
	}
}

func (p *publisher) parts(k int) {
	for range k {
		msn, idx := uint64(p.n/partsPerSegment), p.n%partsPerSegment
		part := media.Part{MSN: msn, Index: idx, Duration: 250 * time.Millisecond, Independent: idx == 0,
			Last: idx == partsPerSegment-1, ProgramDateTime: time.Unix(1e9, 0).Add(time.Duration(p.n) * 250 * time.Millisecond),
			Data: make([]byte, 1000)}
		for _, name := range []string{"hi", "lo"} {
			if err := p.bc.Part(context.Background(), name, part); err != nil {
				p.t.Fatal(err)
			}
		}
		p.n++
	}
}

// live writes a part every 10 ms, as a (fast) live stream would, until cond holds; for up to
// 20 s.
func (p *publisher) live(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.parts(1)
		for range 5 {
			time.Sleep(2 * time.Millisecond)
			if cond() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// eventually polls cond for up to 20 s: generous, for two shared cores.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastPart(calls []call, rendition string) (uint64, int, bool) {
	for i := len(calls) - 1; i >= 0; i-- {
		if c := calls[i]; c.op == "part" && c.rendition == rendition {
			return c.msn, c.index, true
		}
	}
	return 0, 0, false
}

func state(bc media.Broadcast, i int) media.SinkState {
	return bc.(media.SinkReporter).SinkStatus()[i].State
}

// TestTeeStuckSinkDoesNotDelayOthers: one origin that never answers (a dead link that holds its
// connections) must not hold the packager or the other origin back; the writes return at once
// and the fast origin gets every part.
func TestTeeStuckSinkDoesNotDelayOthers(t *testing.T) {
	fast := &recordingSink{o: newOrigin(t)}
	slow := &recordingSink{o: newOrigin(t)}
	tee := media.NewTee(media.TeeConfig{QueueBytes: 16 << 10}, media.TeeSink{Name: "fast", Sink: fast}, media.TeeSink{Name: "slow", Sink: slow})
	bc, err := tee.Open(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	pub := &publisher{t: t, bc: bc}
	pub.init()
	pub.parts(2)
	eventually(t, "both in sync", func() bool { return state(bc, 0) == media.SinkInSync && state(bc, 1) == media.SinkInSync })

	slow.setStuck(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// 80 KB: the slow origin's 16 KB queue overflows several times. Each part waits
		// for the fast origin, so that only the slow one can fall behind.
		for range 40 {
			pub.parts(1)
			for {
				msn, idx, _ := lastPart(fast.recorded(), "lo")
				if int(msn)*partsPerSegment+idx == pub.n-1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("writes into the tee blocked on a stuck origin")
	}
	eventually(t, "the fast origin to get every part", func() bool {
		msn, idx, ok := lastPart(fast.recorded(), "lo")
		return ok && int(msn)*partsPerSegment+idx == pub.n-1
	})
	if got := state(bc, 0); got != media.SinkInSync {
		t.Errorf("fast origin %s", got)
	}

	// Once unstuck, the slow origin is re-synchronised: it gets the current inits again and
	// then parts from a segment boundary, never the middle of a segment.
	before := len(slow.recorded())
	slow.setStuck(false)
	// The stream goes on as a live one does: if the queue overflows again while the sink
	// drains it (under load it can, past the last segment boundary written), the sink
	// resumes at a later boundary, so there must be one.
	pub.live(t, "the slow origin to catch up", func() bool {
		msn, idx, ok := lastPart(slow.recorded(), "lo")
		return ok && int(msn)*partsPerSegment+idx == pub.n-1 && state(bc, 1) == media.SinkInSync
	})
	checkResumesAtBoundary(t, slow.recorded()[before:])
	if err := bc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// checkResumesAtBoundary checks that re-synchronisation sent both renditions' inits, and that
// after each rendition's init its parts start at part 0 of a segment and follow one another.
func checkResumesAtBoundary(t *testing.T, calls []call) {
	t.Helper()
	first := -1
	for i, c := range calls {
		if c.op == "init" {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("no init sent again: %+v", calls)
	}
	inits := map[string]bool{}
	next := map[string]int{}
	for _, c := range calls[first:] {
		switch c.op {
		case "init":
			// Inits are sent again at each re-synchronisation (a queue may overflow more
			// than once), and parts resume at a boundary after each.
			inits[c.rendition] = true
			delete(next, c.rendition)
		case "part":
			n := int(c.msn)*partsPerSegment + c.index
			want, ok := next[c.rendition]
			switch {
			case !inits[c.rendition]:
				t.Fatalf("%s: part %d.%d before its init: %+v", c.rendition, c.msn, c.index, calls)
			case !ok && c.index != 0:
				t.Fatalf("%s resumed at part %d.%d, not at a segment boundary: %+v", c.rendition, c.msn, c.index, calls)
			case ok && n != want:
				t.Fatalf("%s: part %d.%d, want part number %d: %+v", c.rendition, c.msn, c.index, want, calls)
			}
			next[c.rendition] = n + 1
		}
	}
	if len(next) != 2 {
		t.Fatalf("not every rendition resumed: %+v", calls)
	}
}

// TestTeeFailedSinkRecovers: an origin whose link fails is marked down, retried with backoff,
// and once back is reopened with the same stream, sent the current inits (a generation made
// while it was down included) and fed from the next segment boundary; the other origin never
// notices.
func TestTeeFailedSinkRecovers(t *testing.T) {
	a := &recordingSink{o: newOrigin(t)}
	bOrigin := newOrigin(t)
	b := &recordingSink{o: bOrigin}
	tee := media.NewTee(media.TeeConfig{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		media.TeeSink{Name: "a", Sink: a}, media.TeeSink{Name: "b", Sink: b})
	bc, err := tee.Open(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	changed := bc.(media.SinkReporter).SinkChanged()
	pub := &publisher{t: t, bc: bc}
	pub.init()
	pub.parts(6) // segment 0 and half of 1
	eventually(t, "b in sync", func() bool { return state(bc, 1) == media.SinkInSync })

	b.setDown(true)
	pub.parts(1)
	eventually(t, "b down", func() bool { return state(bc, 1) == media.SinkDown })
	select {
	case <-changed:
	case <-time.After(5 * time.Second): // the state is set just before the signal
		t.Error("SinkChanged not signalled")
	}
	if st := bc.(media.SinkReporter).SinkStatus()[1]; st.Name != "b" || st.Since.IsZero() {
		t.Errorf("status %+v", st)
	}
	pub.gen++
	pub.init() // new codec parameters while b is away
	pub.parts(6)
	before := len(b.recorded())
	b.setDown(false)
	eventually(t, "b catching up", func() bool { return state(bc, 1) == media.SinkCatchingUp })
	pub.parts(2 * partsPerSegment)
	eventually(t, "b back in sync", func() bool {
		msn, idx, ok := lastPart(b.recorded(), "hi")
		return ok && int(msn)*partsPerSegment+idx == pub.n-1 && state(bc, 1) == media.SinkInSync
	})
	calls := b.recorded()[before:]
	if len(calls) == 0 || calls[0].op != "open" {
		t.Fatalf("b was not reopened first: %+v", calls)
	}
	for _, c := range calls {
		if c.op == "init" && c.gen != 1 {
			t.Fatalf("b got an old init: %+v", calls)
		}
		if c.op == "part" {
			break
		}
	}
	checkResumesAtBoundary(t, calls)
	if msn, idx, _ := lastPart(a.recorded(), "hi"); int(msn)*partsPerSegment+idx != pub.n-1 || state(bc, 0) != media.SinkInSync {
		t.Errorf("a: last part %d.%d, state %s", msn, idx, state(bc, 0))
	}
	if err := bc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := b.recorded(); c[len(c)-1].op != "close" {
		t.Errorf("b not closed: %+v", c[len(c)-1])
	}
}

// TestTeeOpenNeedsOneSink: Open returns once one sink accepted; it fails only when none does,
// and a sink that was down at Open joins the broadcast when it comes up.
func TestTeeOpenNeedsOneSink(t *testing.T) {
	a := &recordingSink{o: newOrigin(t), down: true}
	b := &recordingSink{o: newOrigin(t), down: true}
	tee := media.NewTee(media.TeeConfig{RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond},
		media.TeeSink{Name: "a", Sink: a}, media.TeeSink{Name: "b", Sink: b})
	if _, err := tee.Open(context.Background(), testStream); !errors.Is(err, errLinkDown) {
		t.Fatalf("Open with every sink down: %v", err)
	}
	b.setDown(false)
	bc, err := tee.Open(context.Background(), testStream)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a down", func() bool { return state(bc, 0) == media.SinkDown })
	pub := &publisher{t: t, bc: bc}
	pub.init()
	pub.parts(3)
	a.setDown(false)
	eventually(t, "a catching up", func() bool { return state(bc, 0) == media.SinkCatchingUp && len(a.recorded()) > 0 })
	pub.parts(partsPerSegment + 1)
	eventually(t, "a joins", func() bool {
		msn, idx, ok := lastPart(a.recorded(), "lo")
		return ok && int(msn)*partsPerSegment+idx == pub.n-1 && state(bc, 0) == media.SinkInSync
	})
	if msn, idx, _ := lastPart(a.recorded(), "lo"); msn == 0 {
		t.Errorf("a got segment 0 it joined in the middle of: %d.%d", msn, idx)
	}
	_ = bc.Close(context.Background())
}
