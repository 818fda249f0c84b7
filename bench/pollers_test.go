package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestPollers: each poller reloads the first variant's media playlist every interval, with no
// LL-HLS directive, so 20 pollers at 100 ms for 1 s make about 200 reloads of that playlist,
// the multivariant is read once, and failed reloads are counted and fail the run.
func TestPollers(t *testing.T) {
	var mv, media, directives, fail atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/live.m3u8", func(w http.ResponseWriter, r *http.Request) {
		mv.Add(1)
		_, _ = w.Write([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nv/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nw/index.m3u8\n"))
	})
	mux.HandleFunc("/v/index.m3u8", func(w http.ResponseWriter, r *http.Request) {
		if media.Add(1) == 50 && fail.Load() == 1 {
			http.Error(w, "", http.StatusServiceUnavailable)
			return
		}
		for k := range r.URL.Query() {
			if len(k) > 5 && k[:5] == "_HLS_" {
				directives.Add(1)
			}
		}
		_, _ = w.Write([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:1\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := PollersConfig{URL: srv.URL + "/live.m3u8", Pollers: 20, Every: 100 * time.Millisecond, Duration: time.Second}
	rep, err := Pollers(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := media.Load(); n < 190 || n > 210 || rep.Requests != n || rep.Failed != 0 || mv.Load() != 1 || directives.Load() != 0 {
		t.Fatalf("%d media playlist reloads (report: %d, %d failed), %d multivariant reads, %d directives; want about 200, 0, 1, 0",
			n, rep.Requests, rep.Failed, mv.Load(), directives.Load())
	}
	if rep.P50 <= 0 || rep.P99 < rep.P50 {
		t.Fatalf("response times p50 %v p99 %v", rep.P50, rep.P99)
	}
	media.Store(0)
	fail.Store(1)
	if rep, err = Pollers(context.Background(), cfg); err == nil || rep.Failed != 1 {
		t.Fatalf("one reload answered 503: failed %d, err %v", rep.Failed, err)
	}
}
