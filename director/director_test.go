package director

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"glasscast/media"
)

const (
	region  = "us-east-1"
	account = "000000000000"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLocator(t *testing.T) {
	l, err := NewLocator("10.0.0.0/8=wide, 10.1.0.0/16=eu-west,127.0.0.2/32=b,::1/128=v6", "CloudFront-Viewer-Country", "DE=eu-west,us=us-east", "home")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		remote, header, want string
	}{
		{"10.1.2.3:555", "", "eu-west"}, // the longer prefix wins though listed later
		{"10.9.2.3:555", "", "wide"},
		{"127.0.0.2:1", "", "b"},
		{"127.0.0.1:1", "", "home"},
		{"[::1]:1", "", "v6"},
		{"127.0.0.2:1", "US", "us-east"}, // the trusted header wins over the address
		{"127.0.0.1:1", "de", "eu-west"},
		{"127.0.0.1:1", "ap-south", "ap-south"}, // a region label as is
		{"garbage", "", "home"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.header != "" {
			r.Header.Set("CloudFront-Viewer-Country", c.header)
		}
		if got := l.Region(r); got != c.want {
			t.Errorf("%s %q: %q, want %q", c.remote, c.header, got, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33=x", "10.0.0.0/8", "=x", "nonsense=x"} {
		if _, err := NewLocator(bad, "", "", ""); err == nil {
			t.Errorf("cidrRegions %q accepted", bad)
		}
	}
}

// registry is a fixed node registry.
type registry struct {
	mu    sync.Mutex
	edges []Edge
}

func (r *registry) Edges() []Edge {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.edges)
}

func names(es []Edge) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestChoose(t *testing.T) {
	now := time.Now()
	reg := &registry{edges: []Edge{
		{Name: "a1", Region: "a", URL: "http://a1", Load: 5, UpdatedAt: now},
		{Name: "a2", Region: "a", URL: "http://a2", Load: 2, UpdatedAt: now},
		{Name: "b1", Region: "b", URL: "http://b1", Load: 9, UpdatedAt: now},
		{Name: "b2", Region: "b", URL: "http://b2", Load: 1, UpdatedAt: now.Add(-time.Minute)}, // stale
		{Name: "c1", Region: "c", URL: "http://c1", Load: 0, UpdatedAt: now},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, Config{Region: region, Account: account, ProbeInterval: time.Hour}, reg, quiet())

	// Same region, least loaded first; other regions after, least loaded first; stale left out.
	if got := names(d.Choose("a")); !slices.Equal(got, []string{"a2", "a1", "c1", "b1"}) {
		t.Fatalf("viewer in a: %v", got)
	}
	if got := names(d.Choose("b")); !slices.Equal(got, []string{"b1", "c1", "a2", "a1"}) {
		t.Fatalf("viewer in b (b2 stale): %v", got)
	}
	// An edge that failed a probe is left out: b has none healthy, so another region serves.
	d.health.markDown("http://b1", true)
	if got := names(d.Choose("b")); !slices.Equal(got, []string{"c1", "a2", "a1"}) {
		t.Fatalf("viewer in b with b1 down: %v", got)
	}
	// Viewers sent count as load until the edge reports again, so a burst spreads.
	a2 := d.Choose("a")[0]
	for i := 0; i < 4; i++ {
		d.health.assigned(a2)
	}
	if got := names(d.Choose("a"))[:2]; !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("after 4 viewers sent to a2 (load 2 -> 6): %v", got)
	}
}

// fakeEdge answers a multivariant playlist with relative child URIs and records what it was
// asked.
type fakeEdge struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newFakeEdge(t *testing.T) *fakeEdge {
	f := &fakeEdge{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(context.Background()))
		f.mu.Unlock()
		if !strings.Contains(r.URL.Path, ".channel.live") {
			http.Error(w, "offline", http.StatusNotFound)
			return
		}
		tok := r.URL.Query().Get("token")
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Access-Control-Allow-Origin", "https://page.example")
		_, _ = io.WriteString(w, "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"x/audio.m3u8?token=d."+tok+"\"\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=1\n"+"us-east-1.000000000000.channel.live/720p/index.m3u8?token=d."+tok+"\n")
	}))
	t.Cleanup(f.Close)
	return f
}

// The director fetches the multivariant from the chosen edge with the viewer's query, Origin
// and the hop marker, and returns it with absolute URIs to that edge; a dead edge is skipped
// and left out afterwards.
func TestServeRewritesAndFailsOver(t *testing.T) {
	live := newFakeEdge(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	now := time.Now()
	reg := &registry{edges: []Edge{
		{Name: "dead", Region: "b", URL: deadURL, UpdatedAt: now},
		{Name: "live", Region: "b", URL: live.URL, Load: 50, UpdatedAt: now},
	}}
	loc, _ := NewLocator("", "X-Region", "", "a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, Config{Region: region, Account: account, Locator: loc, ProbeInterval: time.Hour}, reg, quiet())
	srv := httptest.NewServer(d)
	defer srv.Close()

	get := func(channel, query string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+media.MultivariantPath(region, account, channel)+query, nil)
		req.Header.Set("X-Region", "b")
		req.Header.Set("Origin", "https://page.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("live", "?token=JWT")
	if resp.StatusCode != 200 || resp.Header.Get("X-Glasscast-Edge") != "live" {
		t.Fatalf("%d from %q:\n%s", resp.StatusCode, resp.Header.Get("X-Glasscast-Edge"), body)
	}
	want := live.URL + "/api/video/v1/us-east-1.000000000000.channel.live/720p/index.m3u8?token=d.JWT"
	if !strings.Contains(body, "\n"+want+"\n") || !strings.Contains(body, `URI="`+live.URL+`/api/video/v1/x/audio.m3u8?token=d.JWT"`) {
		t.Fatalf("child URIs not absolute to the edge:\n%s", body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://page.example" {
		t.Fatalf("edge's CORS answer not passed on: %q", got)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Fatalf("a viewer's playlist may be cached: %q", cc)
	}
	live.mu.Lock()
	r := live.reqs[0]
	live.mu.Unlock()
	if r.URL.Query().Get("token") != "JWT" || r.Header.Get("Origin") != "https://page.example" || r.Header.Get(Hop) == "" {
		t.Fatalf("edge asked %s with Origin %q, hop %q", r.URL, r.Header.Get("Origin"), r.Header.Get(Hop))
	}
	// The dead edge, least loaded, was tried and is now left out.
	if got := names(d.Choose("b")); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("after a failed fetch: %v", got)
	}
	// An edge's 404 (offline channel) reaches the viewer as is.
	if resp, _ := get("gone", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("offline channel: %d", resp.StatusCode)
	}
	// No healthy edge at all: 503.
	reg.mu.Lock()
	reg.edges = reg.edges[:1]
	reg.mu.Unlock()
	if resp, _ := get("live", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("no healthy edge: %d", resp.StatusCode)
	}
}

// A viewer that hangs up while its playlist is being fetched says nothing of the edges: they
// stay in rotation, and the next viewer is served. Marking them down left every viewer with
// "no healthy edge" until the next probe, and anyone leaving a page could cause that.
func TestViewerHangUpLeavesEdgesUp(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			time.Sleep(100 * time.Millisecond) // an edge that is a little busy
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = w.Write([]byte("#EXTM3U\n"))
	})
	e1, e2 := httptest.NewServer(slow), httptest.NewServer(slow)
	defer e1.Close()
	defer e2.Close()
	now := time.Now().Add(time.Hour)
	reg := &registry{edges: []Edge{{Name: "e1", Region: "a", URL: e1.URL, UpdatedAt: now}, {Name: "e2", Region: "a", URL: e2.URL, UpdatedAt: now}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, Config{Region: region, Account: account, ProbeInterval: time.Hour}, reg, quiet())

	rctx, hangUp := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, hangUp)
	d.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", media.MultivariantPath(region, account, "c"), nil).WithContext(rctx))
	if got := d.Choose("a"); len(got) != 2 {
		t.Fatalf("after a viewer hung up, %d of 2 edges in rotation", len(got))
	}
	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", media.MultivariantPath(region, account, "c"), nil))
	if w.Code != http.StatusOK {
		t.Fatalf("next viewer: %d %q", w.Code, w.Header().Get("X-Glasscast-Reason"))
	}
}

// The prober leaves out an edge that stops answering and brings it back when it answers again.
func TestProbe(t *testing.T) {
	var mu sync.Mutex
	up := true
	e := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer e.Close()
	reg := &registry{edges: []Edge{{Name: "e", Region: "a", URL: e.URL, UpdatedAt: time.Now().Add(time.Hour)}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, Config{Region: region, Account: account, ProbeInterval: 50 * time.Millisecond}, reg, quiet())
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(d.Choose("a")) != want {
			if time.Now().After(deadline) {
				t.Fatalf("still %d edges chosen, want %d", len(d.Choose("a")), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	mu.Lock()
	up = false
	mu.Unlock()
	wait(0)
	mu.Lock()
	up = true
	mu.Unlock()
	wait(1)
}

// absolute never panics, and keeps every line of the playlist.
func FuzzAbsolute(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA:URI=\"a/b.m3u8\"\nx/720p/index.m3u8?token=t\r\n"))
	f.Add([]byte("#EXT-X-MEDIA:URI=\"\nhttp://[::1\n%zz\n"))
	base, _ := url.Parse("http://edge:1/api/video/v1/r.a.channel.c.m3u8?token=x")
	f.Fuzz(func(t *testing.T, pl []byte) {
		out := absolute(pl, base)
		if bytes.Count(out, []byte("\n")) != bytes.Count(pl, []byte("\n")) {
			t.Fatalf("line count changed:\n%q\n%q", pl, out)
		}
	})
}
