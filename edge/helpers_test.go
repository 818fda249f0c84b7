package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"glasscast/bus"
	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/origintest"
	"glasscast/store"
)

const (
	region  = "us-east-1"
	account = "000000000000"
)

// rig is an origin fed by a synthetic publisher, a counting proxy in front of it, and an edge
// filling from that proxy, served by both of the edge's servers.
type rig struct {
	t      testing.TB
	store  *store.Store
	origin *origin.Origin
	pub    *origintest.Publisher
	edge   *Edge
	http   string // net/http edge server
	fast   string // fasthttp edge server

	mu        sync.Mutex
	upstream  map[string]int // request URI -> count
	originSrv string
	partAt    map[string]time.Time
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newStore(t testing.TB) *store.Store {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "edge-test"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); b.Close() })
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newRig starts everything; channels lists the channel IDs to create ("priv*" are private).
func newRig(t testing.TB, cfg Config, channels ...string) *rig {
	t.Helper()
	r := &rig{t: t, store: newStore(t), upstream: map[string]int{}}
	ctx := context.Background()
	for _, id := range channels {
		if err := r.store.Channels.Create(ctx, id, store.Channel{ID: id, Authorized: strings.HasPrefix(id, "priv"), LatencyMode: "LOW", Type: "BASIC"}); err != nil {
			t.Fatal(err)
		}
	}
	r.origin = origin.New(origin.Config{Region: region, Account: account})
	t.Cleanup(func() { _ = r.origin.Close() })
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.upstream[req.URL.RequestURI()]++
		r.mu.Unlock()
		r.origin.ServeHTTP(w, req)
	}))
	t.Cleanup(counting.Close)
	if cfg.Upstream == "" {
		cfg.Upstream = counting.URL
	}
	cfg.Region, cfg.Account = region, account
	e, err := New(ctx, cfg, r.store, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	r.edge = e
	hs := httptest.NewServer(e)
	t.Cleanup(hs.Close)
	r.http = hs.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: e.ServeFastHTTP}
	go func() { _ = fs.Serve(ln) }()
	t.Cleanup(func() { _ = fs.Shutdown() })
	r.fast = "http://" + ln.Addr().String()
	return r
}

// publish starts a synthetic broadcast on channel at real-time pace.
func (r *rig) publish(channel string, backfill int) {
	r.t.Helper()
	r.pub = origintest.New(&timedSink{Sink: r.origin, r: r}, origintest.Config{ChannelID: channel, Backfill: backfill, FirstMSN: 100})
	if err := r.pub.Open(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.pub.Run(ctx) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// timedSink notes when the origin accepted each part, the reference for delivery delays.
type timedSink struct {
	media.Sink
	r *rig
}

type timedBroadcast struct {
	media.Broadcast
	r *rig
}

func (s *timedSink) Open(ctx context.Context, st media.Stream) (media.Broadcast, error) {
	b, err := s.Sink.Open(ctx, st)
	return &timedBroadcast{Broadcast: b, r: s.r}, err
}

func (b *timedBroadcast) Part(ctx context.Context, rendition string, p media.Part) error {
	err := b.Broadcast.Part(ctx, rendition, p)
	b.r.mu.Lock()
	if b.r.partAt == nil {
		b.r.partAt = map[string]time.Time{}
	}
	b.r.partAt[fmt.Sprintf("%s/%d.%d", rendition, p.MSN, p.Index)] = time.Now()
	b.r.mu.Unlock()
	return err
}

// partTime is when the origin accepted a part.
func (r *rig) partTime(rendition string, msn uint64, index int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.partAt[fmt.Sprintf("%s/%d.%d", rendition, msn, index)]
}

func (r *rig) count(uri string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upstream[uri]
}

func path(channel, rest string) string {
	p := media.MultivariantPath(region, account, channel)
	if rest == "" {
		return p
	}
	return strings.TrimSuffix(p, ".m3u8") + "/" + rest
}

func get(t testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
