package edge

import (
	"context"
	"crypto/tls"
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
	"testing"
	"time"
)

var reHint = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.(\d+)\.m4s`)

// nextPart reads the hinted next part of a rendition through base.
func nextPart(t testing.TB, base, channel string) (uint64, int) {
	t.Helper()
	_, body := get(t, base+path(channel, "720p/index.m3u8"))
	m := reHint.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no preload hint in\n%s", body)
	}
	msn, _ := strconv.ParseUint(m[1], 10, 64)
	part, _ := strconv.Atoi(m[2])
	return msn, part
}

// N concurrent viewers blocking on the next part's playlist, then fetching the hinted part,
// cost the origin one request each, on both servers.
func TestCoalescing(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 3)
	for _, base := range []string{r.http, r.fast} {
		msn, part := nextPart(t, base, "test")
		blocking := path("test", fmt.Sprintf("720p/index.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, part))
		hinted := path("test", fmt.Sprintf("720p/part%d.%d.m4s", msn, part))
		const viewers = 200
		var wg sync.WaitGroup
		errs := make(chan error, 2*viewers)
		start := time.Now()
		for i := 0; i < viewers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for _, p := range []string{blocking + fmt.Sprintf("&vs=viewer%d", i), hinted + fmt.Sprintf("?token=t%d", i)} {
					resp, err := http.Get(base + p)
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || len(b) == 0 {
						errs <- fmt.Errorf("%s: %d", p, resp.StatusCode)
					}
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("viewers waited %v for one part", d)
		}
		upBlocking := strings.Split(blocking, "&vs")[0]
		if n := r.count(upBlocking); n != 1 {
			t.Fatalf("%s: %d upstream requests for %d viewers' blocking playlist, want 1", base, n, viewers)
		}
		if n := r.count(hinted); n != 1 {
			t.Fatalf("%s: %d upstream requests for %d viewers' hinted part, want 1", base, n, viewers)
		}
	}
}

// Every spelling of one request shares one cache entry and one upstream fill: directives on a
// part (which change nothing there), numbers with leading zeros, a meaningless _HLS_skip. One
// client could otherwise bypass coalescing, open an upstream request per spelling and push
// real content out of the cache. A malformed or repeated number is refused at the edge.
func TestDirectiveSpellingsShareOneFill(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 3)
	for _, base := range []string{r.http, r.fast} {
		msn, part := nextPart(t, base, "test")
		hinted := path("test", fmt.Sprintf("720p/part%d.%d.m4s", msn, part))
		playlist := path("test", "720p/index.m3u8")
		before := map[string]bool{}
		r.mu.Lock()
		for uri := range r.upstream {
			before[uri] = true
		}
		r.mu.Unlock()
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := 0; i < 20; i++ {
			for _, p := range []string{
				hinted + fmt.Sprintf("?_HLS_msn=%d&_HLS_part=%d", i, i),
				playlist + fmt.Sprintf("?_HLS_msn=%0*d&_HLS_part=%0*d&_HLS_skip=junk%d", 1+i, msn, 1+i, part, i),
			} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if resp, _ := get(t, base+p); resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("%s: %d", p, resp.StatusCode)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := r.count(hinted); n != 1 {
			t.Errorf("%s: the part was fetched upstream %d times for 20 spellings, want 1", base, n)
		}
		canonical := playlist + fmt.Sprintf("?_HLS_msn=%d&_HLS_part=%d", msn, part)
		r.mu.Lock()
		var others []string
		for uri := range r.upstream {
			if strings.HasPrefix(uri, playlist+"?") && uri != canonical && !before[uri] {
				others = append(others, uri)
			}
		}
		r.mu.Unlock()
		if n := r.count(canonical); n != 1 || len(others) > 0 {
			t.Errorf("%s: %d upstream requests as %s for 20 spellings, and others: %v", base, n, canonical, others)
		}
		for _, q := range []string{"?_HLS_msn=x", "?_HLS_msn=1&_HLS_msn=2", "?_HLS_msn=1&_HLS_part=-1", "?_HLS_msn=99999999999999999999"} {
			if resp, _ := get(t, base+playlist+q); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s%s: %d, want 400", base, q, resp.StatusCode)
			}
			if n := r.count(playlist + q); n != 0 {
				t.Errorf("%s: refused, yet asked upstream", q)
			}
		}
	}
}

// 100 viewers streaming one growing segment cost one upstream request; each receives every
// part's bytes before the origin has the next part (so the segment streams, rather than
// arriving when it is complete), and the finished segment stays cached. How fast the fan-out
// is, is a figure for BenchmarkStreamingFanOut1000, not a bound for a test on shared cores.
func TestGrowingSegmentFanOut(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 2)
	delays := fanOut(t, r, 100)
	worst := delays[len(delays)-1]
	bound := 200 * time.Millisecond // one part (origintest's default PartTarget)
	if raceEnabled {
		bound = time.Second
	}
	if worst > bound {
		t.Fatalf("a viewer received a part %v after the origin had it, want <= %v", worst, bound)
	}
	t.Logf("worst streaming fan-out delay for 100 viewers: %v", worst)
}

// fanOut has viewers stream the next whole segment through the edge (half on each server),
// checks that each got the whole segment and that the origin served it once, and returns, in
// increasing order, every viewer's delay for every part: when it had the part's bytes minus
// when the origin accepted the part.
func fanOut(t testing.TB, r *rig, viewers int) []time.Duration {
	t.Helper()
	msn, _ := nextPart(t, r.http, "test")
	// Wait for the start of the next segment so the fan-out covers a whole one.
	waitFor(t, "a new segment", func() bool { m, p := nextPart(t, r.http, "test"); return m == msn+1 && p == 0 })
	msn++
	seg := path("test", fmt.Sprintf("720p/seg%d.m4s", msn))

	type arrival struct {
		at    time.Time
		total int
	}
	got := make([][]arrival, viewers)
	bodies := make([][]byte, viewers)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: viewers}}
	var wg sync.WaitGroup
	for i := 0; i < viewers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			base := r.http
			if i%2 == 1 {
				base = r.fast
			}
			resp, err := client.Get(base + seg + fmt.Sprintf("?vs=v%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := resp.Body.Read(buf)
				if n > 0 {
					bodies[i] = append(bodies[i], buf[:n]...)
					got[i] = append(got[i], arrival{time.Now(), len(bodies[i])})
				}
				if err != nil {
					return
				}
			}
		}(i)
	}
	// The origin side: each part's size, and when the origin accepted it.
	var partReady []arrival
	total := 0
	for idx := 0; idx < r.pub.PartsPerSegment(); idx++ {
		p := fmt.Sprintf("720p/part%d.%d.m4s", msn, idx)
		resp, body := get(t, "http://"+r.originAddr()+path("test", p)) // held until the part exists
		if resp.StatusCode != 200 {
			t.Fatalf("origin part %s: %d", p, resp.StatusCode)
		}
		total += len(body)
		partReady = append(partReady, arrival{r.partTime("720p", msn, idx), total})
	}
	wg.Wait()
	_, whole := get(t, r.http+seg)
	var delays []time.Duration
	for i := 0; i < viewers; i++ {
		if string(bodies[i]) != string(whole) {
			t.Fatalf("viewer %d got %d bytes, the segment has %d", i, len(bodies[i]), len(whole))
		}
		for _, pr := range partReady {
			for _, a := range got[i] {
				if a.total >= pr.total {
					delays = append(delays, a.at.Sub(pr.at))
					break
				}
			}
		}
	}
	if n := r.count(seg); n != 1 {
		t.Fatalf("%d upstream requests for %d viewers streaming one segment, want 1", n, viewers)
	}
	slices.Sort(delays)
	return delays
}

func (r *rig) originAddr() string {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.originSrv == "" {
		s := httptest.NewServer(r.origin)
		r.t.Cleanup(s.Close)
		r.originSrv = strings.TrimPrefix(s.URL, "http://")
	}
	return r.originSrv
}

// A dead origin is a quick 502, a silent one a 504 after the upstream timeout; errors are not
// cached.
func TestUpstreamFailures(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := newRig(t, Config{Upstream: dead}, "test")
	start := time.Now()
	resp, _ := get(t, r.http+path("test", ""))
	if resp.StatusCode != http.StatusBadGateway || time.Since(start) > time.Second {
		t.Fatalf("dead origin: %d after %v, want 502 within 1s", resp.StatusCode, time.Since(start))
	}

	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and say nothing
		}
	}()
	r2 := newRig(t, Config{Upstream: "http://" + silent.Addr().String(), UpstreamTimeout: 300 * time.Millisecond}, "test")
	start = time.Now()
	resp, _ = get(t, r2.fast+path("test", ""))
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 2*time.Second {
		t.Fatalf("silent origin: %d after %v, want 504 soon after 300ms", resp.StatusCode, time.Since(start))
	}
	if s := r2.edge.Stats(); s.Objects != 0 {
		t.Fatalf("an upstream error was cached: %+v", s)
	}
}

// Cached playlists carry an accurate Age; the multivariant is reused for its max-age.
func TestAgeAndTTL(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 1)
	resp, _ := get(t, r.http+path("test", ""))
	if resp.StatusCode != 200 || resp.Header.Get("Age") != "0" {
		t.Fatalf("first multivariant: %d Age %q", resp.StatusCode, resp.Header.Get("Age"))
	}
	time.Sleep(1100 * time.Millisecond)
	resp, _ = get(t, r.fast+path("test", ""))
	if resp.Header.Get("Age") != "1" {
		t.Fatalf("cached multivariant after 1.1 s: Age %q, want 1", resp.Header.Get("Age"))
	}
	if n := r.count(path("test", "")); n != 1 {
		t.Fatalf("multivariant fetched %d times within its max-age", n)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("no CORS header on a public playlist")
	}
}

// The cache never holds more than its byte bound.
func TestCacheBound(t *testing.T) {
	r := newRig(t, Config{CacheBytes: 300 << 10}, "test")
	r.publish("test", 8)
	for msn := 100; msn < 108; msn++ {
		for i := 0; i < 5; i++ {
			resp, _ := get(t, r.http+path("test", fmt.Sprintf("720p/part%d.%d.m4s", msn, i)))
			if resp.StatusCode != 200 {
				t.Fatalf("part %d.%d: %d", msn, i, resp.StatusCode)
			}
		}
	}
	s := r.edge.Stats()
	if s.Bytes > 300<<10 || s.Evictions == 0 {
		t.Fatalf("cache holds %d bytes (bound %d), %d evictions", s.Bytes, 300<<10, s.Evictions)
	}
}

// The net/http server speaks HTTP/2 over TLS, as Apple players need for low latency.
func TestHTTP2(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 1)
	s := httptest.NewUnstartedServer(r.edge)
	s.EnableHTTP2 = true
	s.StartTLS()
	defer s.Close()
	c := s.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	resp, err := c.Get(s.URL + path("test", "720p/index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("proto %s status %d", resp.Proto, resp.StatusCode)
	}
}

// A plain live LL-HLS playlist is reused for half a part, not its second of max-age and not
// only while in flight: polling players cost the upstream at most two fills a part, and no
// copy is older than that. The hinted part of every answer must not have reached the origin
// more than the hold (plus a part of slack for a slow fill) before the request.
func TestPlainLivePlaylistHeldHalfAPart(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 3)
	plain := path("test", "720p/index.m3u8")
	const partTarget, held = 200 * time.Millisecond, 100 * time.Millisecond
	for _, base := range []string{r.http, r.fast} {
		before := r.count(plain)
		requests := 0
		for start := time.Now(); time.Since(start) < 1200*time.Millisecond; requests++ {
			sent := time.Now()
			resp, body := get(t, base+plain)
			if resp.StatusCode != 200 || resp.Header.Get("Age") == "" {
				t.Fatalf("%s: %d, Age %q", base, resp.StatusCode, resp.Header.Get("Age"))
			}
			m := reHint.FindStringSubmatch(string(body))
			if m == nil {
				t.Fatalf("no preload hint in\n%s", body)
			}
			msn, _ := strconv.ParseUint(m[1], 10, 64)
			part, _ := strconv.Atoi(m[2])
			if at := r.partTime("720p", msn, part); !at.IsZero() && at.Before(sent.Add(-held-partTarget)) {
				t.Fatalf("%s: a playlist hinting part %d.%d, which the origin had %v before the request", base, msn, part, sent.Sub(at))
			}
		}
		fills := r.count(plain) - before
		if requests < 20 || fills < 3 || fills > 14 {
			t.Fatalf("%s: %d requests in 1.2 s cost %d upstream fills, want 3 to 14 (one per hold of %v)", base, requests, fills, held)
		}
		t.Logf("%s: %d requests, %d fills", base, requests, fills)
	}
}

// A held plain playlist is dropped once the part it hints is here: a player that fetches the
// hinted part and then reloads the plain playlist for the next hint, as gohlslib does, must
// get a playlist that lists the part, not one that hints it again (it would fetch it twice,
// and its timeline would step back a part). Other viewers keep the held copy fresh, so that
// without the check nearly every reload would be one the part has overtaken.
func TestHeldPlaylistOvertakenByItsHint(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 3)
	plain := path("test", "720p/index.m3u8") + "?_HLS_skip=YES"
	hintOf := func(body []byte) (uint64, int, string) {
		m := reHint.FindStringSubmatch(string(body))
		if m == nil {
			t.Fatalf("no preload hint in\n%s", body)
		}
		msn, _ := strconv.ParseUint(m[1], 10, 64)
		part, _ := strconv.Atoi(m[2])
		return msn, part, strings.TrimPrefix(m[0], `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="`)
	}
	for _, base := range []string{r.http, r.fast} {
		ctx, stop := context.WithCancel(context.Background())
		var polls sync.WaitGroup
		for range 4 {
			polls.Add(1)
			go func() {
				defer polls.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", base+plain, nil)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		_, body := get(t, base+plain)
		msn, part, uri := hintOf(body)
		for range 12 {
			if resp, _ := get(t, base+path("test", "720p/"+uri)); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: hinted part %s: %d", base, uri, resp.StatusCode)
			}
			_, body = get(t, base+plain)
			m, p, next := hintOf(body)
			if m < msn || m == msn && p <= part {
				t.Fatalf("%s: after fetching hinted part %d.%d, the reload hints %d.%d", base, msn, part, m, p)
			}
			msn, part, uri = m, p, next
		}
		stop()
		polls.Wait()
	}
}
