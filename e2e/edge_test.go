package e2e

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"glasscast/bench"
)

// countingProxy sits between edges and the origin and counts requests per URI.
type countingProxy struct {
	mu     sync.Mutex
	counts map[string]int
	url    string
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // stream growing segments as they arrive
	p := &countingProxy{counts: map[string]int{}}
	addr := freePort(t)
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.URL.RequestURI()]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })
	p.url = "http://" + addr
	return p
}

// check asserts that every part and every blocking playlist state was fetched once, and
// returns how many there were.
func (p *countingProxy) check(t *testing.T) (parts, blocking int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for uri, n := range p.counts {
		isPart := strings.Contains(uri, "/part")
		isBlocking := strings.Contains(uri, "_HLS_msn=")
		if isPart {
			parts++
		}
		if isBlocking {
			blocking++
		}
		if (isPart || isBlocking) && n != 1 {
			t.Errorf("%s fetched from the origin %d times, want 1", uri, n)
		}
	}
	return parts, blocking
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.mu.Unlock()
}

func viewerLoad(t *testing.T, ctx context.Context, url string, viewers int, d time.Duration) bench.ViewersReport {
	t.Helper()
	rep, err := bench.Viewers(ctx, bench.ViewersConfig{URL: url, Viewers: viewers, Duration: d, Ramp: time.Second, MaxErrorRate: 0})
	if err != nil {
		t.Fatalf("%d viewers on %s: %v\n%s", viewers, url, err, rep)
	}
	if rep.Parts < int64(viewers)*int64(d/time.Second) {
		t.Fatalf("%d viewers received only %d parts in %v\n%s", viewers, rep.Parts, d, rep)
	}
	return rep
}

// TestEdgeTiers: with a live ffmpeg stream, 200 viewers through one edge process cost the
// origin one request per part and per blocking playlist state; with a shield edge in front of
// the origin the same holds for two edges; GetStream's viewerCount follows the viewers.
func TestEdgeTiers(t *testing.T) {
	natsAddr := freePort(t)
	originAddr := freePort(t)
	a := startServe(t, "", "--nats-listen", natsAddr, "--origin-listen", originAddr)
	c := a.ivsClient()
	ctx := ctxT(t, 4*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	publish(t, a.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	proxy := newCountingProxy(t, "http://"+originAddr)
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, a)...)
	playbackPath := strings.TrimPrefix(*ch.PlaybackUrl, a.endpoint())

	// One edge, 200 viewers.
	e0 := startRole(t, "edge", append(join, "--edge-upstream", proxy.url)...)
	rep := viewerLoad(t, ctx, e0.endpoint()+playbackPath, 200, 10*time.Second)
	parts, blocking := proxy.check(t)
	t.Logf("one edge, 200 viewers: %d parts and %d blocking playlists fetched once each\n%s", parts, blocking, rep)
	if parts < 30 || blocking < 30 {
		t.Fatalf("too few objects went through the proxy: %d parts, %d blocking playlists", parts, blocking)
	}

	// viewerCount rises with the viewers, summed over edges, and falls when they leave.
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = bench.Viewers(loadCtx, bench.ViewersConfig{URL: e0.endpoint() + playbackPath, Viewers: 30, Duration: time.Minute, MaxErrorRate: 1})
	}()
	waitViewers(t, ctx, c, ch.Arn, func(n int64) bool { return n >= 30 && n <= 31 })
	stopLoad()
	wg.Wait()
	waitViewers(t, ctx, c, ch.Arn, func(n int64) bool { return n == 0 })

	// A shield tier: two edges fill from one shield edge, which alone talks to the origin.
	proxy.reset()
	shield := startRole(t, "edge", append(join, "--edge-upstream", proxy.url)...)
	e1 := startRole(t, "edge", append(join, "--edge-upstream", shield.endpoint())...)
	e2 := startRole(t, "edge", append(join, "--edge-upstream", shield.endpoint())...)
	for _, e := range []*node{e1, e2} {
		wg.Add(1)
		go func(e *node) {
			defer wg.Done()
			viewerLoad(t, ctx, e.endpoint()+playbackPath, 100, 10*time.Second)
		}(e)
	}
	wg.Wait()
	parts, blocking = proxy.check(t)
	t.Logf("shield + two edges, 2x100 viewers: %d parts and %d blocking playlists fetched once each", parts, blocking)
	if parts < 30 {
		t.Fatalf("too few parts through the shield: %d", parts)
	}
}

func waitViewers(t *testing.T, ctx context.Context, c *ivs.Client, arn *string, ok func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last int64 = -1
	for time.Now().Before(deadline) {
		if out, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: arn}); err == nil {
			last = out.Stream.ViewerCount
			if ok(last) {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("viewerCount stayed at %d", last)
}
