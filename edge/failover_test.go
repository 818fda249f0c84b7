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

// A breaker nobody asks about stops probing (an origin whose broadcasts ended) and lets the
// next request that wants the upstream try it.
func TestBreakerForgets(t *testing.T) {
	var probes atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := NewBreaker("x", func(context.Context) error { probes.Add(1); return fmt.Errorf("down") }, 10*time.Millisecond, 20*time.Millisecond, quiet())
	b.forget = 100 * time.Millisecond
	b.Failure(ctx, fmt.Errorf("boom"))
	waitFor(t, "probing to stop", func() bool { return b.State() == "half-open" })
	n := probes.Load()
	time.Sleep(100 * time.Millisecond)
	if probes.Load() != n {
		t.Fatal("a forgotten upstream is still probed")
	}
	if !b.Allow() {
		t.Fatal("a forgotten upstream is not tried again")
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
