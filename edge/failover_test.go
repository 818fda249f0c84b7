package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"glasscast/store"
)

// liveEdge starts an edge that discovers origins from live registrations (no edge.upstream),
// using only the configuration every version of the edge has.
func liveEdge(t *testing.T, st *store.Store) string {
	t.Helper()
	e, err := New(context.Background(), Config{Region: region, Account: account}, st, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(e)
	t.Cleanup(s.Close)
	return s.URL
}

// A channel that exists but that no origin holds (not live) is a 404, which the IVS player
// reports as ErrorNotAvailable for an offline channel; a 502 reads as a broken service.
func TestOfflineChannelIs404(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if err := st.Channels.Create(ctx, "off", store.Channel{ID: "off", LatencyMode: "LOW", Type: "BASIC"}); err != nil {
		t.Fatal(err)
	}
	base := liveEdge(t, st)
	for _, p := range []string{path("off", ""), path("off", "720p/index.m3u8")} {
		if resp, body := get(t, base+p); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s of an offline channel: %d %q, want 404", p, resp.StatusCode, body)
		}
	}
	// A live registration that names no origin reachable from here is offline for this edge too.
	if err := st.Live.Put(ctx, "off", store.Live{ChannelID: "off", UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, base+path("off", "")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("live channel without origins: %d %q, want 404", resp.StatusCode, body)
	}
}

// countingListener counts the connections a server accepts: the dials made to it.
type countingListener struct {
	net.Listener
	dials atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.dials.Add(1)
	}
	return c, err
}

// deadOrigin accepts connections and closes them at once, as a crashed host's port does
// not, but countably: every request to it fails and every dial is seen.
func deadOrigin(t *testing.T) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	go func() {
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return "http://" + ln.Addr().String(), cl
}

// TestDeadOriginDials: with the dead origin first in the live registration, each request
// used to dial it before falling over; the breaker skips it, so it is dialled at most about
// once per probe interval. Every request still succeeds. Run with -v for the figures.
func TestDeadOriginDials(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if err := st.Channels.Create(ctx, "test", store.Channel{ID: "test", LatencyMode: "LOW", Type: "BASIC"}); err != nil {
		t.Fatal(err)
	}
	dead, counter := deadOrigin(t)
	var served atomic.Int64
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Cache-Control", "no-cache") // every request is a fill
		w.Header().Set("Content-Type", "video/mp4")
		_, _ = w.Write([]byte("part"))
	}))
	t.Cleanup(live.Close)
	if err := st.Live.Put(ctx, "test", store.Live{ChannelID: "test", Origins: []string{dead, live.URL}, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	base := liveEdge(t, st)
	if resp, _ := get(t, base+path("test", "720p/part1.0.m4s")); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	before := counter.dials.Load()
	const viewers, d = 8, 2 * time.Second
	var requests, failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < viewers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; time.Since(start) < d; n++ {
				resp, err := http.Get(base + path("test", fmt.Sprintf("720p/part%d.%d.m4s", i, n)))
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	dials := counter.dials.Load() - before
	t.Logf("%d requests in %v, %d failed; dead origin dialled %d times (%.1f/s), live origin served %d",
		requests.Load(), elapsed.Round(time.Millisecond), failures.Load(), dials, float64(dials)/elapsed.Seconds(), served.Load())
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failures.Load(), requests.Load())
	}
	// Default probing starts at 500 ms and doubles: at most one dial per 500 ms, plus one.
	if limit := int64(elapsed/(500*time.Millisecond)) + 1; dials > limit {
		t.Fatalf("dead origin dialled %d times in %v for %d requests, want at most %d (one per probe interval)",
			dials, elapsed, requests.Load(), limit)
	}
}

// The breaker opens on a failure, probes with backoff, goes half-open when the upstream
// answers, and closes on the next success.
func TestBreakerStates(t *testing.T) {
	var up atomic.Bool
	var probes atomic.Int64
	probe := func(context.Context) error {
		probes.Add(1)
		if up.Load() {
			return nil
		}
		return fmt.Errorf("down")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := NewBreaker("x", probe, 20*time.Millisecond, 80*time.Millisecond, quiet())
	if !b.Allow() || b.State() != "closed" {
		t.Fatalf("new breaker: %s", b.State())
	}
	if !b.Failure(ctx, fmt.Errorf("boom")) || b.Allow() {
		t.Fatalf("after a failure: %s, want open", b.State())
	}
	if b.Failure(ctx, fmt.Errorf("again")) {
		t.Fatal("a second failure reported opening an open breaker")
	}
	time.Sleep(300 * time.Millisecond)
	if n := probes.Load(); n < 2 || n > 6 {
		t.Fatalf("%d probes in 300 ms with 20..80 ms backoff", n)
	}
	if b.Allow() {
		t.Fatal("open breaker allowed a request while probes fail")
	}
	up.Store(true)
	waitFor(t, "half-open", func() bool { return b.State() == "half-open" })
	if !b.Allow() {
		t.Fatal("half-open breaker refuses requests")
	}
	b.Success()
	if b.State() != "closed" {
		t.Fatalf("after a success: %s", b.State())
	}
	n := probes.Load()
	time.Sleep(200 * time.Millisecond)
	if probes.Load() != n {
		t.Fatal("a closed breaker keeps probing")
	}
}

// Discovered origins are tried same zone first, then same region, then the others, each rank
// in the ingest's order.
func TestNearest(t *testing.T) {
	places := map[string]Place{
		"http://a1": {"a", "a-1"}, "http://a2": {"a", "a-2"},
		"http://b1": {"b", "b-1"}, "http://b2": {"b", "b-2"},
	}
	all := []string{"http://a1", "http://a2", "http://b1", "http://b2", "http://unknown"}
	for _, c := range []struct {
		here Place
		want []string
	}{
		{Place{"a", "a-1"}, []string{"http://a1", "http://a2", "http://b1", "http://b2", "http://unknown"}},
		{Place{"a", "a-2"}, []string{"http://a2", "http://a1", "http://b1", "http://b2", "http://unknown"}},
		{Place{"b", ""}, []string{"http://b1", "http://b2", "http://a1", "http://a2", "http://unknown"}},
		{Place{"b", "b-2"}, []string{"http://b2", "http://b1", "http://a1", "http://a2", "http://unknown"}},
		{Place{"c", ""}, all},
		{Place{}, all},
	} {
		if got := Nearest(all, places, c.here); !slices.Equal(got, c.want) {
			t.Errorf("from %v: %v, want %v", c.here, got, c.want)
		}
	}
}

// An edge in region b tries region b's origin first although the ingest listed region a's
// first; the order comes from the node registry in the store.
func TestLiveOriginsByRegion(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if err := st.Live.Put(ctx, "ch", store.Live{ChannelID: "ch", Origins: []string{"http://oa:1", "http://ob:1"}, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []store.Node{
		{Name: "origin-a", Region: "a", OriginURL: "http://oa:1", UpdatedAt: time.Now()},
		{Name: "origin-b", Region: "b", OriginURL: "http://ob:1/", UpdatedAt: time.Now()},
	} {
		if err := st.Nodes.Put(ctx, n.Name, n); err != nil {
			t.Fatal(err)
		}
	}
	if got := (LiveOrigins{Store: st, Here: Place{Region: "b"}}).Upstreams("ch"); !slices.Equal(got, []string{"http://ob:1", "http://oa:1"}) {
		t.Fatalf("edge in b: %v", got)
	}
	if got := (LiveOrigins{Store: st, Here: Place{Region: "a"}}).Upstreams("ch"); !slices.Equal(got, []string{"http://oa:1", "http://ob:1"}) {
		t.Fatalf("edge in a: %v", got)
	}
	if got := (LiveOrigins{Store: st}).Upstreams("gone"); got != nil {
		t.Fatalf("channel not live: %v", got)
	}
}

var reHintPart = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(part(\d+)\.(\d+)\.m4s)`)

// TestFailoverNoViewerErrors: viewers follow a live broadcast through an edge whose upstream
// list names two paths to the origin; the first dies mid-broadcast (its connections cut, its
// port closed) and no viewer request fails.
func TestFailoverNoViewerErrors(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := &countingListener{Listener: ln}
	a := &httptest.Server{Listener: first, Config: &http.Server{Handler: r.origin}}
	a.Start()
	t.Cleanup(a.Close)
	b := httptest.NewServer(r.origin)
	t.Cleanup(b.Close)
	e, err := New(context.Background(), Config{Region: region, Account: account, Upstream: a.URL + "," + b.URL}, r.store, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	es := httptest.NewServer(e)
	t.Cleanup(es.Close)

	const viewers = 10
	var requests, failures atomic.Int64
	var failMu sync.Mutex
	var failed []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < viewers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			fetch := func(p string) []byte {
				requests.Add(1)
				sep := "?"
				if strings.Contains(p, "?") {
					sep = "&"
				}
				resp, err := http.Get(es.URL + path("test", p) + sep + fmt.Sprintf("vs=v%d", i))
				if err != nil {
					failures.Add(1)
					return nil
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					failMu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %d %v", p, resp.StatusCode, err))
					failMu.Unlock()
					return nil
				}
				return body
			}
			pl := fetch("720p/index.m3u8")
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := reHintPart.FindSubmatch(pl)
				if m == nil {
					pl = fetch("720p/index.m3u8")
					continue
				}
				msn, _ := strconv.Atoi(string(m[2]))
				part, _ := strconv.Atoi(string(m[3]))
				fetch("720p/" + string(m[1]))
				if next := fetch(fmt.Sprintf("720p/index.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, part+1)); next != nil {
					pl = next
				} else if next := fetch(fmt.Sprintf("720p/index.m3u8?_HLS_msn=%d&_HLS_part=0", msn+1)); next != nil {
					pl = next // the part after the last of a segment is the next segment's first
				}
			}
		}(i)
	}
	time.Sleep(1500 * time.Millisecond)
	a.CloseClientConnections()
	a.Close() // port closed: the first upstream is gone for good
	killed := time.Now()
	time.Sleep(2500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d viewers, %d requests, %d failed; first upstream dialled %d times in total", viewers, requests.Load(), failures.Load(), first.dials.Load())
	if failures.Load() != 0 {
		t.Fatalf("%d of %d viewer requests failed after the upstream died at %v: %v", failures.Load(), requests.Load(), killed.Format(time.StampMilli), failed)
	}
	if requests.Load() < viewers*10 {
		t.Fatalf("only %d requests: viewers did not follow the broadcast", requests.Load())
	}
}
