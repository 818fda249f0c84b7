package edge

// These tests use only the configuration every version of the edge has, so they also run
// against the code before the breaker (see the report's figures).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
