package origin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gohls "github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/llhlscheck"
	"glasscast/origin/origintest"
)

// cutSink passes a publisher's calls to an origin until cut, then drops them; once restored it
// drops parts until each rendition's next segment, as an ingest re-synchronising an origin
// after a lost link does.
type cutSink struct {
	o *origin.Origin

	mu     sync.Mutex
	cut    bool
	waitOn map[string]bool
}

func (c *cutSink) Open(ctx context.Context, s media.Stream) (media.Broadcast, error) {
	bc, err := c.o.Open(ctx, s)
	if err != nil {
		return nil, err
	}
	return &cutBroadcast{c, bc}, nil
}

func (c *cutSink) setCut(cut bool, renditions ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	c.waitOn = make(map[string]bool)
	for _, r := range renditions {
		c.waitOn[r] = !cut
	}
}

type cutBroadcast struct {
	c  *cutSink
	bc media.Broadcast
}

func (b *cutBroadcast) Init(ctx context.Context, r media.Rendition, init []byte) error {
	return b.bc.Init(ctx, r, init)
}

func (b *cutBroadcast) Part(ctx context.Context, rendition string, p media.Part) error {
	b.c.mu.Lock()
	drop := b.c.cut || b.c.waitOn[rendition] && p.Index != 0
	if !drop {
		b.c.waitOn[rendition] = false
	}
	b.c.mu.Unlock()
	if drop {
		return nil
	}
	return b.bc.Part(ctx, rendition, p)
}

func (b *cutBroadcast) Close(ctx context.Context) error { return b.bc.Close(ctx) }

// gapStream publishes segments 0-2 and part 0-1 of segment 3, misses the rest of 3, 4 and 5
// and part 0 of 6 wherever the cut ends, and continues from segment 7.
func gapStream(t *testing.T, cfg origin.Config, pcfg origintest.Config) (*liveStream, *cutSink) {
	t.Helper()
	o := origin.New(cfg)
	cs := &cutSink{o: o, waitOn: map[string]bool{}}
	s := &liveStream{origin: o, srv: newTestServer(t, o), pub: origintest.New(cs, pcfg)}
	t.Cleanup(func() {
		s.stop()
		_ = o.Close()
	})
	if err := s.pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := s.pub.PartsPerSegment()
	steps(t, s, 3*n+2)
	cs.setCut(true)
	steps(t, s, 3*n) // to part 2 of segment 6
	var names []string
	for _, r := range s.pub.Renditions() {
		names = append(names, r.Name)
	}
	cs.setCut(false, names...)
	steps(t, s, n+2) // the rest of 6 is skipped; 7 arrives
	return s, cs
}

func TestGapListedWithExtXGap(t *testing.T) {
	s, _ := gapStream(t, origin.Config{Window: 6}, origintest.Config{})
	pl := mediaPlaylist(t, s, "720p", "")
	if len(pl.OrderErrors) > 0 {
		t.Fatalf("order errors %v\n%s", pl.OrderErrors, pl.Raw)
	}
	n := s.pub.PartsPerSegment()
	seg3 := pl.Segment(3)
	// Cut short: two parts of 0.2 s. (The gap pushes its parts out of the part window.)
	if seg3 == nil || seg3.Gap || seg3.URI == "" || seg3.Duration != 0.4 {
		t.Fatalf("segment cut short by the gap: %+v\n%s", seg3, pl.Raw)
	}
	for msn := uint64(4); msn <= 6; msn++ {
		g := pl.Segment(msn)
		if g == nil || !g.Gap || len(g.Parts) != 0 || g.Discontinuity || g.Duration <= 0 || g.Duration > float64(pl.TargetDuration) {
			t.Fatalf("segment %d should be a gap: %+v\n%s", msn, g, pl.Raw)
		}
		if status, _, _ := get(t, s.path("720p", "seg"+itoa(msn)+".m4s")); status != http.StatusNotFound {
			t.Errorf("gap segment %d: %d, want 404", msn, status)
		}
		if status, _, _ := get(t, s.path("720p", partName(msn, 0))); status != http.StatusNotFound {
			t.Errorf("part of gap segment %d: %d, want 404", msn, status)
		}
	}
	seg7 := pl.Segment(7)
	if seg7 == nil || seg7.Gap || seg7.Discontinuity || len(seg7.Parts) != 4 || seg7.Parts[0].URI != partName(7, 0) {
		t.Fatalf("segment after the gap: %+v\n%s", seg7, pl.Raw)
	}
	// The gap takes the time that was missed, as far as three segments of at most a target
	// duration each can (segment 3 was cut short too); segment 7's PDT anchors what follows.
	end3 := seg3.PDT.Add(time.Duration(seg3.Duration * float64(time.Second)))
	missed := seg7.PDT.Sub(end3)
	var gapDur float64
	for msn := uint64(4); msn <= 6; msn++ {
		gapDur += pl.Segment(msn).Duration
	}
	want := min(missed, 3*time.Duration(pl.TargetDuration)*time.Second)
	if d := time.Duration(gapDur*float64(time.Second)) - want; d < -10*time.Millisecond || d > 10*time.Millisecond {
		t.Errorf("gap lasts %.3f s, %v missed", gapDur, missed)
	}
	_ = n
	for _, q := range []string{"", "_HLS_skip=YES", "_HLS_msn=7&_HLS_part=1"} {
		_, _, body := get(t, s.path("720p", "index.m3u8?"+q))
		if _, err := gohls.Unmarshal(body); err != nil {
			t.Errorf("gohlslib rejects ?%s: %v\n%s", q, err, body)
		}
	}
}

// TestGapLongerThanWindow: a cut longer than the window leaves only gap segments and what
// followed.
func TestGapLongerThanWindow(t *testing.T) {
	o := origin.New(origin.Config{Window: 6})
	defer o.Close()
	ctx := context.Background()
	bc, err := o.Open(ctx, media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second, PartTarget: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Init(ctx, media.Rendition{Name: "r"}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	part := func(msn uint64, idx int) media.Part {
		return media.Part{MSN: msn, Index: idx, Duration: 500 * time.Millisecond, Last: idx == 1, Independent: idx == 0,
			ProgramDateTime: t0.Add(time.Duration(msn)*time.Second + time.Duration(idx)*500*time.Millisecond), Data: []byte("x")}
	}
	for msn := uint64(0); msn < 8; msn++ {
		for i := range 2 {
			if err := bc.Part(ctx, "r", part(msn, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := bc.Part(ctx, "r", part(1000, 0)); err != nil {
		t.Fatalf("part after a long gap: %v", err)
	}
	srv := newServer(t, o)
	status, _, body := get(t, srv+media.PlaybackPrefix+media.PlaybackName("x", "y", "c")+"/r/index.m3u8")
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	pl, err := parseMediaBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	if pl.MediaSequence != 994 || len(pl.Segments) != 6 || !pl.Segments[0].Gap || !pl.Segments[5].Gap ||
		!strings.Contains(string(body), `#EXT-X-PART:DURATION=0.5,URI="part1000.0.m4s"`) {
		t.Fatalf("window after a long gap: sequence %d, %d segments\n%s", pl.MediaSequence, len(pl.Segments), body)
	}
}

// TestConformanceAfterGap runs the LL-HLS checklist on a stream with a gap in its window.
func TestConformanceAfterGap(t *testing.T) {
	s, _ := gapStream(t, origin.Config{DateRanges: true}, origintest.Config{Backfill: 14, CueEvery: 3})
	s.run()
	runChecklist(t, s, "D10")
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func parseMediaBytes(b []byte) (*llhlscheck.MediaPlaylist, error) { return llhlscheck.ParseMedia(b) }

func newTestServer(t *testing.T, o *origin.Origin) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return srv
}
