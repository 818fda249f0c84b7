package viewers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"glasscast/bus"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openBus starts a real embedded NATS server (the one serve runs) in a temporary folder.
func openBus(t testing.TB) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "viewers-test"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// waitCount waits for the counter's figure for channel to satisfy ok, and returns the last one.
func waitCount(t *testing.T, c *Counter, channel string, ok func(int64) bool) int64 {
	t.Helper()
	var n int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n = c.Viewers(channel); ok(n) {
			return n
		}
	}
	t.Fatalf("%s: %d viewers counted", channel, n)
	return n
}

// Counts stay right past what one NATS message holds: two edges each with 150,000 sessions of
// a big channel (a third of them seen by both, as viewers moving between edges are) and 2,000
// small channels of 3 viewers, and a counter that sees exact figures for small channels and
// the big one's within 2 %. Reported as lists of session IDs, one edge's report alone would
// be some 3 MB, past NATS's 1 MB limit, and every channel of that edge would drop to 0.
func TestCountsAtScale(t *testing.T) {
	b := openBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counter, err := Count(ctx, b.Conn, 3*100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	shared := make([]uint64, 50_000)
	for i := range shared {
		shared[i] = rand.Uint64()
	}
	for e := range 2 {
		tr := NewTracker()
		for _, s := range shared {
			tr.Seen("big", s, now)
		}
		for range 100_000 {
			tr.Seen("big", rand.Uint64(), now)
		}
		for c := range 2000 {
			for v := range 3 {
				tr.Seen(fmt.Sprintf("small%d", c), uint64(c*10+v), now) // the same 3 on both edges
			}
		}
		go Publish(ctx, b.Conn, fmt.Sprintf("edge%d", e), tr, 100*time.Millisecond, quiet())
	}
	want := 250_000.0
	got := waitCount(t, counter, "big", func(n int64) bool { return math.Abs(float64(n)-want) < 0.02*want })
	for _, ch := range []string{"small0", "small999", "small1999"} {
		waitCount(t, counter, ch, func(n int64) bool { return n == 3 })
	}
	t.Logf("big: %d counted for %.0f", got, want)
}

// A report's last message retires the channels an edge no longer has, even when the report
// came in several messages; an edge's exact IDs and another's sketch of the same channel
// count as their union; an edge silent for maxAge stops counting.
func TestReportsRetireAndMerge(t *testing.T) {
	c := &Counter{edges: map[string]*edgeState{}, counts: map[string]int64{}, maxAge: time.Minute}
	now := time.Now()
	snap := map[string][]uint64{}
	for i := range 40 { // 40 channels of 1,000: several messages
		ids := make([]uint64, 1000)
		for j := range ids {
			ids[j] = uint64(i*1000 + j)
		}
		snap[fmt.Sprintf("ch%d", i)] = ids
	}
	rs := reports("a", 1, snap)
	if len(rs) < 2 || rs[len(rs)-1].More || !rs[0].More {
		t.Fatalf("%d messages for 40,000 IDs, More flags wrong or not split", len(rs))
	}
	for _, r := range rs {
		if b, _ := json.Marshal(r); len(b) > 1<<20 {
			t.Fatalf("a message of %d bytes, past NATS's limit", len(b))
		}
		c.add(r, now)
	}
	if n := c.Viewers("ch7"); n != 1000 {
		t.Fatalf("ch7: %d, want 1000", n)
	}
	// The next report has only ch0: every other channel drops to 0 with its last message.
	for _, r := range reports("a", 2, map[string][]uint64{"ch0": snap["ch0"]}) {
		c.add(r, now)
	}
	if n, m := c.Viewers("ch7"), c.Viewers("ch0"); n != 0 || m != 1000 {
		t.Fatalf("after ch7 ended: ch7 %d, ch0 %d", n, m)
	}
	// Edge b sees 5,000 sessions of ch0 (a sketch), 500 of them edge a's: union 5,500.
	big := make([]uint64, 5000)
	for j := range big {
		big[j] = uint64(500 + j)
	}
	rb := reports("b", 1, map[string][]uint64{"ch0": big})
	if len(rb) != 1 || rb[0].Sketches["ch0"] == nil {
		t.Fatalf("5,000 sessions not sent as a sketch: %+v", rb)
	}
	c.add(rb[0], now)
	if n := c.Viewers("ch0"); math.Abs(float64(n)-5500) > 0.02*5500 {
		t.Fatalf("ch0 over both edges: %d, want about 5,500", n)
	}
	// Edge b goes silent: after maxAge only a's 1,000 count.
	c.edges["b"].at = now.Add(-2 * time.Minute)
	if n := c.Viewers("ch0"); n != 1000 {
		t.Fatalf("ch0 after edge b went silent: %d, want 1000", n)
	}
}

// A late message of an older report changes nothing.
func TestLateReportIgnored(t *testing.T) {
	c := &Counter{edges: map[string]*edgeState{}, counts: map[string]int64{}, maxAge: time.Minute}
	now := time.Now()
	c.add(reports("a", 2, map[string][]uint64{"x": {1, 2, 3}})[0], now)
	c.add(reports("a", 1, map[string][]uint64{"y": {4}})[0], now)
	if x, y := c.Viewers("x"), c.Viewers("y"); x != 3 || y != 0 {
		t.Fatalf("after a late older report: x %d, y %d; want 3, 0", x, y)
	}
}

// BenchmarkTrackerSnapshot100k: a report's snapshot of 100,000 sessions, and how long on
// average a request recording a session could wait on it (a shard's lock hold, µs-hold; with
// one lock it was the whole snapshot).
func BenchmarkTrackerSnapshot100k(b *testing.B) {
	tr := NewTracker()
	now := time.Now()
	for range 100_000 {
		tr.Seen("big", rand.Uint64(), now)
	}
	var held time.Duration
	for b.Loop() {
		for i := range tr.shards {
			s := time.Now()
			tr.shards[i].snapshot(now)
			held += time.Since(s)
		}
	}
	b.ReportMetric(float64(held.Microseconds())/float64(b.N*shards), "µs-hold")
}
