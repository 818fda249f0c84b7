package origin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/llhlscheck"
	"glasscast/origin/origintest"
)

func TestReconnectResumesWithDiscontinuity(t *testing.T) {
	s := stepped(t, origin.Config{Window: 6}, origintest.Config{Backfill: 3})
	steps(t, s, 2) // segment 3 in progress, parts 0 and 1
	if err := s.pub.Reconnect(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	steps(t, s, 2)
	pl := mediaPlaylist(t, s, "720p", "")
	seg3, seg4 := pl.Segment(3), pl.Segment(4)
	if seg3 == nil || seg3.URI == "" || len(seg3.Parts) != 2 || seg3.Map != "init0.mp4" {
		t.Fatalf("segment cut by the reconnect: %+v\n%s", seg3, pl.Raw)
	}
	if seg4 == nil || !seg4.Discontinuity || seg4.Map != "init1.mp4" || len(pl.OrderErrors) > 0 {
		t.Fatalf("segment after the reconnect: %+v %v\n%s", seg4, pl.OrderErrors, pl.Raw)
	}
	if pl.MediaSequence != 0 || pl.DiscontinuitySequence != 0 {
		t.Fatalf("sequences %d/%d", pl.MediaSequence, pl.DiscontinuitySequence)
	}
	// Slide the discontinuity out of the window.
	steps(t, s, 7*s.pub.PartsPerSegment())
	pl = mediaPlaylist(t, s, "720p", "")
	if pl.DiscontinuitySequence != 1 || pl.MediaSequence < 5 {
		t.Fatalf("after sliding: MEDIA-SEQUENCE %d DISCONTINUITY-SEQUENCE %d\n%s", pl.MediaSequence, pl.DiscontinuitySequence, pl.Raw)
	}
	if status, _, _ := get(t, s.path("720p", "init1.mp4")); status != http.StatusOK {
		t.Fatalf("init1: %d", status)
	}
}

func TestNewStreamReplacesOld(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	old := s.pub
	// A request waiting on the old broadcast is answered with its final playlist.
	waited := make(chan *llhlscheck.MediaPlaylist, 1)
	u := s.path("720p", "index.m3u8?_HLS_msn=2&_HLS_part=3")
	go func() {
		_, body, _ := fetch(u)
		pl, _ := llhlscheck.ParseMedia(body)
		waited <- pl
	}()
	time.Sleep(50 * time.Millisecond)
	s.pub = origintest.New(s.origin, origintest.Config{StreamID: "stream-2", FirstMSN: 100, Backfill: 1})
	if err := s.pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case pl := <-waited:
		if pl == nil || !pl.Ended {
			t.Fatalf("waiting request on the replaced broadcast: %+v", pl)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiting request not released by the replacement")
	}
	if err := old.Step(context.Background()); !errors.Is(err, origin.ErrClosed) && !errors.Is(err, origin.ErrSuperseded) {
		t.Fatalf("old publisher: %v", err)
	}
	if pl := mediaPlaylist(t, s, "720p", ""); pl.MediaSequence != 100 || pl.Ended {
		t.Fatalf("new broadcast: MEDIA-SEQUENCE %d ended %v", pl.MediaSequence, pl.Ended)
	}
}

func TestEndLingersThenOffline(t *testing.T) {
	clock := newFakeClock()
	s := stepped(t, origin.Config{Clock: clock.Now, Linger: time.Minute}, origintest.Config{Backfill: 2})
	steps(t, s, 2)
	if err := s.pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	pl := mediaPlaylist(t, s, "720p", "")
	if !pl.Ended || pl.Pending != nil || len(pl.PreloadHints) > 0 || len(pl.Prefetch) > 0 {
		t.Fatalf("ended playlist:\n%s", pl.Raw)
	}
	if len(pl.Segments) != 3 {
		t.Fatalf("the segment in progress should end with the broadcast: %d segments", len(pl.Segments))
	}
	clock.Add(time.Minute)
	if status, _, _ := get(t, s.url()); status != http.StatusNotFound {
		t.Fatalf("after linger: %d", status)
	}
	waitFor(t, func() bool { st := s.origin.Stats(); return st.Broadcasts == 0 && st.HeldBytes == 0 })
}

func TestResumeAfterClose(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	if err := s.pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.pub.Reconnect(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	steps(t, s, 1)
	if pl := mediaPlaylist(t, s, "720p", ""); pl.Ended || pl.Pending == nil || !pl.Pending.Discontinuity {
		t.Fatalf("resumed playlist:\n%s", pl.Raw)
	}
}

func TestMemoryBoundedAndRetention(t *testing.T) {
	clock := newFakeClock()
	s := stepped(t, origin.Config{Clock: clock.Now, Window: 6, Retention: 5 * time.Second}, origintest.Config{})
	per := s.pub.PartsPerSegment()
	var peak int64
	for i := range 40 {
		steps(t, s, per)
		clock.Add(time.Second)
		held := s.origin.Stats().HeldBytes
		if i == 12 {
			peak = held
		}
		if i > 12 && held > peak*11/10 {
			t.Fatalf("segment %d: %d bytes held, %d at segment 12: memory grows", i, held, peak)
		}
	}
	// Segment 33 left the window (34..39 listed) within the retention; segment 20 is gone.
	if status, _, _ := get(t, s.path("720p", "seg33.m4s")); status != http.StatusOK {
		t.Errorf("recently removed segment: %d, want 200", status)
	}
	if status, _, _ := get(t, s.path("720p", partName(33, 2))); status != http.StatusOK {
		t.Errorf("part of a recently removed segment: %d, want 200", status)
	}
	if status, _, _ := get(t, s.path("720p", "seg20.m4s")); status != http.StatusNotFound {
		t.Errorf("segment removed long ago: %d, want 404", status)
	}
}

func TestPublishingErrors(t *testing.T) {
	o := origin.New(origin.Config{})
	defer o.Close()
	ctx := context.Background()
	stream := media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second, PartTarget: 200 * time.Millisecond}
	for _, bad := range []media.Stream{
		{ChannelID: "a.b", StreamID: "s", TargetDuration: time.Second},
		{ChannelID: "c", TargetDuration: time.Second},
		{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second},
	} {
		if _, err := o.Open(ctx, bad); !errors.Is(err, origin.ErrInvalid) {
			t.Errorf("Open(%+v): %v", bad, err)
		}
	}
	b, err := o.Open(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	part := func(msn uint64, idx int, data string) media.Part {
		return media.Part{MSN: msn, Index: idx, Duration: 200 * time.Millisecond, Data: []byte(data)}
	}
	if err := b.Part(ctx, "r", part(0, 0, "x")); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("part before init: %v", err)
	}
	if err := b.Init(ctx, media.Rendition{Name: "../r"}, []byte("i")); !errors.Is(err, origin.ErrInvalid) {
		t.Errorf("unsafe rendition name: %v", err)
	}
	if err := b.Init(ctx, media.Rendition{Name: "r"}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	if err := b.Init(ctx, media.Rendition{Name: "r"}, []byte("init")); err != nil {
		t.Errorf("repeated identical init: %v", err)
	}
	if err := b.Init(ctx, media.Rendition{Name: "r"}, []byte("other")); !errors.Is(err, origin.ErrOutOfOrder) {
		t.Errorf("changed init without a new generation: %v", err)
	}
	checks := []struct {
		p    media.Part
		want error
	}{
		{part(5, 2, "mid"), nil}, // ignored: a rendition starts at a segment boundary
		{part(5, 0, "a"), nil},
		{part(5, 0, "a"), nil}, // a retry
		{part(5, 0, "b"), origin.ErrOutOfOrder},
		{part(5, 2, "c"), origin.ErrOutOfOrder},
		{part(7, 1, "d"), origin.ErrOutOfOrder}, // a gap must end at a segment boundary
		{part(6, 1, "e"), origin.ErrOutOfOrder},
		{part(5, 1, "f"), nil},
		{media.Part{MSN: 5, Index: 2, Duration: 200 * time.Millisecond}, origin.ErrInvalid},
	}
	for i, c := range checks {
		if err := b.Part(ctx, "r", c.p); !errors.Is(err, c.want) && (c.want != nil || err != nil) {
			t.Errorf("check %d: Part(%d.%d): %v, want %v", i, c.p.MSN, c.p.Index, err, c.want)
		}
	}
	again, err := o.Open(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Part(ctx, "r", part(5, 2, "g")); !errors.Is(err, origin.ErrSuperseded) {
		t.Errorf("superseded handle: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Errorf("closing a superseded handle: %v", err)
	}
	if err := again.Part(ctx, "r", part(5, 2, "g")); err != nil {
		t.Errorf("the reopened handle publishes: %v", err)
	}
	changed := stream
	changed.TargetDuration = 2 * time.Second
	if _, err := o.Open(ctx, changed); !errors.Is(err, origin.ErrInvalid) {
		t.Errorf("reopen with other parameters: %v", err)
	}
	_ = o.Close()
	if _, err := o.Open(ctx, stream); !errors.Is(err, origin.ErrClosed) {
		t.Errorf("open after close: %v", err)
	}
}

// TestCloseReleasesWaiters checks that Close ends waiting requests at once rather than at their
// 3 × TD limit.
func TestCloseReleasesWaiters(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	done := make(chan time.Duration, 1)
	u := s.path("720p", partName(2, 0))
	go func() {
		start := time.Now()
		_, _, _ = fetch(u)
		done <- time.Since(start)
	}()
	waitFor(t, func() bool { return s.origin.Stats().Blocked == 1 })
	_ = s.origin.Close()
	if d := <-done; d > time.Second {
		t.Fatalf("waiter released after %v", d)
	}
}

// TestNoGoroutineLeak: after Close and the server's shutdown, nothing the origin started runs,
// including requests whose clients went away while they waited.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		o := origin.New(origin.Config{})
		srv := httptest.NewServer(o)
		defer srv.Close()
		pub := origintest.New(o, origintest.Config{Backfill: 2})
		if err := pub.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		base := srv.URL + media.PlaybackPrefix + media.PlaybackName(testRegion, testAccount, "test") + "/720p/"
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		for _, f := range []string{"index.m3u8?_HLS_msn=2&_HLS_part=0", "part2.0.m4s", "seg2.m4s"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+f, nil)
			if resp, err := srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		}
		_ = o.Close()
		srv.CloseClientConnections()
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRepeatMarkedLastEndsSegment: a packager that sent its newest part early, before it knew
// the part ended its segment (the end of its stream), sends it again marked Last. The repeat
// adds nothing and completes the segment; a repeat marked Last of an older part does nothing.
func TestRepeatMarkedLastEndsSegment(t *testing.T) {
	o := origin.New(origin.Config{})
	defer o.Close()
	srv := newServer(t, o)
	ctx := context.Background()
	b, err := o.Open(ctx, media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second, PartTarget: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Init(ctx, media.Rendition{Name: "r"}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	part := func(idx int, data string, last bool) media.Part {
		return media.Part{MSN: 5, Index: idx, Duration: 200 * time.Millisecond, Independent: idx == 0, Last: last, Data: []byte(data)}
	}
	u := srv + media.PlaybackPrefix + media.PlaybackName(testRegion, testAccount, "c") + "/r/index.m3u8"
	complete := func() bool {
		status, _, body := get(t, u)
		if status != http.StatusOK {
			t.Fatalf("playlist: %d %s", status, body)
		}
		return strings.Contains(string(body), "\nseg5.m4s\n")
	}
	for i, c := range []struct {
		p        media.Part
		complete bool
	}{
		{part(0, "a", false), false},
		{part(1, "b", false), false},
		{part(0, "a", true), false}, // not the newest part: nothing
		{part(1, "b", true), true},
	} {
		if err := b.Part(ctx, "r", c.p); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := complete(); got != c.complete {
			t.Errorf("step %d (part %d, Last %v): segment complete %v, want %v", i, c.p.Index, c.p.Last, got, c.complete)
		}
	}
	if err := b.Part(ctx, "r", part(1, "other", true)); !errors.Is(err, origin.ErrOutOfOrder) {
		t.Errorf("a different part 5.1 after the segment ended: %v", err)
	}
}
