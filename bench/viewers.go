// Package bench generates load against a Glasscast deployment the way real clients behave:
// LL-HLS viewers that block on the next part as hls.js does, and chat clients. It prints live
// progress and a final report of throughput, errors and delivery latency.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"glasscast/origin/llhlscheck"
)

// ViewersConfig describes a viewer load run.
type ViewersConfig struct {
	URL      string        // multivariant playlist URL (with ?token= for private channels)
	Viewers  int           // concurrent simulated players
	Duration time.Duration // how long each plays
	Ramp     time.Duration // spread the viewers' starts over this long
	// MaxErrorRate fails the run when errors exceed this fraction of requests.
	MaxErrorRate float64
	Progress     io.Writer // live progress, once a second (nil: none)
	// Header is sent with every request, e.g. the region header a load balancer in front of a
	// playback director sets.
	Header http.Header
	// NoGzip leaves Accept-Encoding out, so playlists come unencoded. Browsers ask for gzip,
	// and so does the client by default; on the cores of the server it measures, Go's inflate
	// of each small playlist (about 15 µs, mostly building its Huffman tables) is a cost of
	// the client alone, paid only against servers that compress.
	NoGzip bool
}

// ViewersReport is the outcome of a run.
type ViewersReport struct {
	Requests    int64
	Bytes       int64
	Elapsed     time.Duration
	Errors      map[string]int64
	Parts       int64
	DelayP50    time.Duration
	DelayP95    time.Duration
	DelayP99    time.Duration
	DelayMax    time.Duration
	ErrorRate   float64
	Unsupported string // why delays were not measured, if they were not
	// Stall is, over viewers, the longest wait of each for a part past that part's duration:
	// what a player with a buffer of one part would spend frozen.
	StallP50, StallP99, StallMax time.Duration
	// PartTarget is the stream's PART-TARGET, the yardstick of Pass.
	PartTarget time.Duration
	// Pass is the capacity criterion: p99 part delay under one part target, no viewer waiting a
	// part target or more past a part's duration (a stall), no error.
	Pass bool
}

// judge sets Pass.
func (r *ViewersReport) judge() {
	var errs int64
	for _, n := range r.Errors {
		errs += n
	}
	r.Pass = r.PartTarget > 0 && r.Parts > 0 && errs == 0 && r.DelayP99 < r.PartTarget && r.StallMax < r.PartTarget
}

// ErrorCount is the number of failed requests.
func (r ViewersReport) ErrorCount() int64 {
	var errs int64
	for _, n := range r.Errors {
		errs += n
	}
	return errs
}

func (r ViewersReport) String() string {
	s := fmt.Sprintf("requests %d (%.0f/s), %.1f MB (%.1f Mbit/s), parts %d\n", r.Requests,
		float64(r.Requests)/r.Elapsed.Seconds(), float64(r.Bytes)/1e6, float64(r.Bytes)*8/1e6/r.Elapsed.Seconds(), r.Parts)
	s += fmt.Sprintf("part delivery delay (received - part end by program-date-time): p50 %v p95 %v p99 %v max %v\n",
		r.DelayP50.Round(time.Millisecond), r.DelayP95.Round(time.Millisecond), r.DelayP99.Round(time.Millisecond), r.DelayMax.Round(time.Millisecond))
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s += fmt.Sprintf("longest stall per viewer: p50 %v p99 %v max %v\n",
		r.StallP50.Round(time.Millisecond), r.StallP99.Round(time.Millisecond), r.StallMax.Round(time.Millisecond))
	s += fmt.Sprintf("errors %.3f%%:", 100*r.ErrorRate)
	if len(keys) == 0 {
		s += " none"
	}
	for _, k := range keys {
		s += fmt.Sprintf(" %s=%d", k, r.Errors[k])
	}
	verdict := "FAIL"
	if r.Pass {
		verdict = "PASS"
	}
	s += fmt.Sprintf("\n%s: p99 part delay %v, longest stall %v (both must stay under one part target, %v), %d errors\n",
		verdict, r.DelayP99.Round(time.Millisecond), r.StallMax.Round(time.Millisecond), r.PartTarget, r.ErrorCount())
	return s
}

// stats are shared by every simulated viewer.
type stats struct {
	requests, bytes, parts atomic.Int64
	partTarget             atomic.Int64 // nanoseconds, from the first media playlist read
	mu                     sync.Mutex
	errors                 map[string]int64
	delays                 []time.Duration
	stalls                 []time.Duration // each viewer's longest
	gunzip                 gunzipper
}

func (s *stats) fail(kind string) {
	s.mu.Lock()
	s.errors[kind]++
	s.mu.Unlock()
}

// Viewers runs the load and returns its report; the error is non-nil when the error rate
// exceeded cfg.MaxErrorRate.
func Viewers(ctx context.Context, cfg ViewersConfig) (ViewersReport, error) {
	st := &stats{errors: map[string]int64{}}
	client := newClient(cfg.Viewers*3+100, 30*time.Second) // a player holds one or two connections at a time
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Ramp)
	defer cancel()
	stopProgress := make(chan struct{})
	if cfg.Progress != nil {
		go progress(cfg.Progress, st, start, stopProgress)
	}
	var wg sync.WaitGroup
	for i := 0; i < cfg.Viewers; i++ {
		delay := time.Duration(0)
		if cfg.Viewers > 1 {
			delay = cfg.Ramp * time.Duration(i) / time.Duration(cfg.Viewers)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(delay):
			case <-runCtx.Done():
				return
			}
			vctx, vcancel := context.WithTimeout(runCtx, cfg.Duration)
			defer vcancel()
			stall := play(vctx, &viewer{client: client, st: st, header: cfg.Header, noGzip: cfg.NoGzip, lastPart: time.Now()}, cfg.URL)
			st.mu.Lock()
			st.stalls = append(st.stalls, stall)
			st.mu.Unlock()
		}()
	}
	wg.Wait()
	close(stopProgress)
	rep := ViewersReport{Requests: st.requests.Load(), Bytes: st.bytes.Load(), Parts: st.parts.Load(),
		Elapsed: time.Since(start), Errors: st.errors}
	var errs int64
	for _, n := range st.errors {
		errs += n
	}
	if rep.Requests > 0 {
		rep.ErrorRate = float64(errs) / float64(rep.Requests)
	}
	sort.Slice(st.delays, func(i, j int) bool { return st.delays[i] < st.delays[j] })
	if n := len(st.delays); n > 0 {
		q := func(p float64) time.Duration { return st.delays[min(n-1, int(p*float64(n)))] }
		rep.DelayP50, rep.DelayP95, rep.DelayP99, rep.DelayMax = q(0.50), q(0.95), q(0.99), st.delays[n-1]
	}
	sort.Slice(st.stalls, func(i, j int) bool { return st.stalls[i] < st.stalls[j] })
	if n := len(st.stalls); n > 0 {
		q := func(p float64) time.Duration { return st.stalls[min(n-1, int(p*float64(n)))] }
		rep.StallP50, rep.StallP99, rep.StallMax = q(0.50), q(0.99), st.stalls[n-1]
	}
	rep.PartTarget = time.Duration(st.partTarget.Load())
	rep.judge()
	if rep.ErrorRate > cfg.MaxErrorRate {
		return rep, fmt.Errorf("error rate %.2f%% above %.2f%%", 100*rep.ErrorRate, 100*cfg.MaxErrorRate)
	}
	return rep, nil
}

func progress(w io.Writer, st *stats, start time.Time, stop chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n := st.requests.Load()
			st.mu.Lock()
			var errs int64
			for _, e := range st.errors {
				errs += e
			}
			st.mu.Unlock()
			fmt.Fprintf(w, "%4.0fs  %6d req/s  %8d requests  %6d parts  %d errors\n", time.Since(start).Seconds(), n-last, n, st.parts.Load(), errs)
			last = n
		}
	}
}

// play is one player, like hls.js in low-latency mode: it loads the multivariant playlist and
// follows the first variant's media playlist and, when the variant takes its audio from a
// separate rendition (as MediaMTX serves it), that audio playlist too, at the same time, as
// hls.js's stream controllers do. It returns the player's longest stall.
func play(ctx context.Context, v *viewer, mvURL string) time.Duration {
	var tracks []*viewer
	if mv, final, err := v.multivariant(ctx, mvURL); err == nil {
		v.media = resolve(final, mv.Variants[0].URI)
		tracks = append(tracks, v)
		if uri := audioRendition(mv); uri != "" {
			tracks = append(tracks, &viewer{client: v.client, st: v.st, header: v.header, noGzip: v.noGzip, lastPart: v.lastPart,
				media: resolve(final, uri)})
		}
	}
	if len(tracks) == 0 {
		tracks = append(tracks, v)
	}
	var wg sync.WaitGroup
	for _, t := range tracks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if t.media != nil {
				t.follow(ctx)
			}
			if !t.ended {
				// A player that gave up on errors, or still waits for a part when its time is
				// up, is frozen until it leaves.
				<-ctx.Done()
				t.stall = max(t.stall, over(ctx).Sub(t.lastPart)-t.lastDur)
			}
		}()
	}
	wg.Wait()
	var stall time.Duration
	for _, t := range tracks {
		stall = max(stall, t.stall)
	}
	return stall
}

// newClient is the load client's HTTP client: up to maxConns connections, each kept idle for
// idle at most.
func newClient(maxConns int, idle time.Duration) *fasthttp.Client {
	return &fasthttp.Client{
		Dial:                     func(addr string) (net.Conn, error) { return fasthttp.DialTimeout(addr, 5*time.Second) },
		MaxConnsPerHost:          maxConns,
		MaxIdleConnDuration:      idle,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
	}
}

// multivariant reads the multivariant playlist at u; it has at least one variant, and its URIs
// resolve against the returned URL (the final one, after redirects). A playlist without a
// variant is counted as a "bad-multivariant" error.
func (v *viewer) multivariant(ctx context.Context, u string) (*llhlscheck.Multivariant, *url.URL, error) {
	body, loc, err := v.getFinal(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	final, err := url.Parse(loc)
	if err != nil {
		return nil, nil, err
	}
	mv, err := llhlscheck.ParseMultivariant(body)
	if err == nil && len(mv.Variants) == 0 {
		err = errors.New("no variant")
	}
	if err != nil {
		v.st.fail("bad-multivariant")
		return nil, nil, fmt.Errorf("multivariant %s: %w", loc, err)
	}
	return mv, final, nil
}

// over is when the viewer's time is up: its context's deadline, or now if it has none or it
// has passed. A stall still going on then is counted up to it, not to whenever the last
// request returned.
func over(ctx context.Context) time.Time {
	now := time.Now()
	if d, ok := ctx.Deadline(); ok && d.Before(now) {
		return d
	}
	return now
}

// audioRendition is the URI of the audio rendition the first variant plays, if it is a
// separate playlist: the group's DEFAULT=YES entry, else its first.
func audioRendition(mv *llhlscheck.Multivariant) string {
	group := mv.Variants[0].Attrs["AUDIO"]
	if group == "" {
		return ""
	}
	uri := ""
	for _, r := range mv.Renditions {
		if r.Attrs["TYPE"] != "AUDIO" || r.Attrs["GROUP-ID"] != group {
			continue
		}
		if r.Attrs["DEFAULT"] == "YES" {
			return r.URI
		}
		if uri == "" {
			uri = r.URI
		}
	}
	return uri
}

// viewer follows one media playlist of a player.
type viewer struct {
	media    *url.URL // the media playlist
	client   *fasthttp.Client
	st       *stats
	header   http.Header
	noGzip   bool
	last     []byte        // the URI of the newest part taken (fetched, or skipped when tuning in)
	fresh    []livePart    // the parts being fetched, its slice reused
	lastPart time.Time     // when the previous part arrived (or the viewer started)
	lastDur  time.Duration // the previous part's duration
	stall    time.Duration // longest wait for a part past its duration
	ended    bool          // the playlist ended (EXT-X-ENDLIST)
	req      *fasthttp.Request
	resp     *fasthttp.Response
	gunzip   []byte       // the last gunzipped body, its buffer reused
	pl       livePlaylist // the last playlist read, its slices reused
	reload   []byte       // the blocking reload URL being built, its buffer reused
	dir      string       // the media playlist's URL up to its last slash, once known
}

// get returns the body of u; it is valid until the viewer's next request.
func (v *viewer) get(ctx context.Context, u string) ([]byte, error) {
	b, _, err := v.getFinal(ctx, u)
	return b, err
}

// getFinal is get that also returns the URL the body came from after redirects, which relative
// URIs in it resolve against, as players do (a playback director may redirect).
//
// The client is fasthttp's, with one request and one response per viewer reused for all its
// requests: the load client runs on the cores of the server it measures, and when a part
// completes every viewer is answered in the same instant, so its cost per request is added
// to the part delay it reports. net/http's client (two goroutines and channel hand-offs per
// connection, io.ReadAll's growing copies) cost about three times the server's own work per
// part. Like a browser, it asks for gzip and follows redirects.
func (v *viewer) getFinal(ctx context.Context, u string) ([]byte, string, error) {
	if v.req == nil {
		v.req, v.resp = &fasthttp.Request{}, &fasthttp.Response{}
	}
	cur := u
	// fasthttp takes a deadline, not a context: a request outlives a cancelled run by at most
	// this cap, hls.js's own load time-out for playlists (10 s), which no blocking reload of
	// a live server reaches.
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for redirects := 0; ; redirects++ {
		v.req.Reset()
		v.req.SetRequestURI(cur)
		if !v.noGzip {
			v.req.Header.Set("Accept-Encoding", "gzip")
		}
		for k, vs := range v.header {
			for _, val := range vs {
				v.req.Header.Add(k, val)
			}
		}
		v.st.requests.Add(1)
		err := v.client.DoDeadline(v.req, v.resp, deadline)
		if err != nil {
			if ctx.Err() == nil && time.Now().Before(deadline) {
				if errors.Is(err, fasthttp.ErrTimeout) {
					v.st.fail("timeout")
				} else {
					v.st.fail("network")
				}
			}
			return nil, "", err
		}
		code := v.resp.StatusCode()
		v.st.bytes.Add(int64(len(v.resp.Body())))
		if fasthttp.StatusCodeIsRedirect(code) && redirects < 10 {
			base, err := url.Parse(cur)
			if err != nil {
				return nil, "", err
			}
			cur = resolve(base, string(v.resp.Header.Peek("Location"))).String()
			continue
		}
		if code != http.StatusOK {
			v.st.fail(strconv.Itoa(code))
			return nil, "", fmt.Errorf("%s: status %d", cur, code)
		}
		body := v.resp.Body()
		if bytes.Equal(v.resp.Header.ContentEncoding(), []byte("gzip")) {
			if v.gunzip, err = v.st.gunzip.appendGunzip(v.gunzip[:0], body); err != nil {
				v.st.fail("body")
				return nil, "", err
			}
			body = v.gunzip
		}
		return body, cur, nil
	}
}

// follow plays v.media as hls.js does in low-latency mode: blocking reloads for the next part,
// delta updates when the server offers them, each new part fetched once.
func (v *viewer) follow(ctx context.Context) {
	media := v.media.String()
	// Delivery directives are added to the playlist's own query, as hls.js does.
	sep := byte('?')
	if strings.Contains(media, "?") {
		sep = '&'
	}
	body, err := v.get(ctx, media)
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		pl := &v.pl
		if err := scanMedia(body, pl); err != nil {
			v.st.fail("bad-playlist")
			return
		}
		if pl.ended {
			v.ended = true
			return
		}
		if pl.partTarget > 0 {
			v.st.partTarget.CompareAndSwap(0, int64(pl.partTarget*float64(time.Second)))
		}
		v.fetchNewParts(ctx, pl)
		if !pl.hasNext {
			v.st.fail("no-parts")
			return
		}
		v.reload = append(append(v.reload[:0], media...), sep)
		v.reload = append(strconv.AppendUint(append(v.reload, "_HLS_msn="...), pl.nextMSN, 10), "&_HLS_part="...)
		v.reload = strconv.AppendInt(v.reload, int64(pl.nextPart), 10)
		if pl.skip != nil {
			// hls.js asks for a delta update whenever the server offers one (its playlist is
			// always fresh enough, being a blocking reload's); both the bytes sent and the
			// playlist the client reads shrink to the last Skip Boundary's worth.
			v.reload = append(append(v.reload, "&_HLS_skip="...), pl.skip...)
		}
		if body, err = v.get(ctx, string(v.reload)); err != nil {
			if ctx.Err() != nil || !time.Now().Before(over(ctx)) {
				return // fasthttp's deadline can fire a moment before the context's
			}
			time.Sleep(200 * time.Millisecond) // back off before retrying, as players do
			body, err = v.get(ctx, media)
			if err != nil {
				return
			}
		}
	}
}

// fetchNewParts downloads each part of the playlist's live edge once, the first time it is
// listed, and records how long after its end (by program-date-time) it arrived. Parts are
// listed in order, so the new ones are those after the newest already taken (all of them if
// that one has left the playlist). The playlist's slices point into the body of the last
// request, so everything needed of it is read before each part's own request.
func (v *viewer) fetchNewParts(ctx context.Context, pl *livePlaylist) {
	if len(pl.parts) == 0 {
		return
	}
	first := v.last == nil
	from := 0
	switch {
	case first:
		// A player tuning in starts at the live edge: only the newest parts are loaded.
		for from < len(pl.parts) && pl.parts[from].seg < pl.lastSeg {
			from++
		}
	default:
		for i := len(pl.parts) - 1; i >= 0; i-- {
			if bytes.Equal(pl.parts[i].uri, v.last) {
				from = i + 1
				break
			}
		}
	}
	v.last = append(v.last[:0], pl.parts[len(pl.parts)-1].uri...)
	fresh := v.fresh[:0]
	for _, p := range pl.parts[from:] {
		p.uri = bytes.Clone(p.uri)
		p.pdt = bytes.Clone(p.pdt)
		fresh = append(fresh, p)
	}
	v.fresh = fresh
	for _, p := range fresh {
		if _, err := v.get(ctx, v.partLocation(p.uri)); err != nil {
			continue
		}
		v.st.parts.Add(1)
		now := time.Now()
		if !first {
			v.stall = max(v.stall, now.Sub(v.lastPart)-p.dur)
		}
		v.lastPart, v.lastDur = now, p.dur
		if end := p.end(); !end.IsZero() && !first {
			d := now.Sub(end)
			v.st.mu.Lock()
			v.st.delays = append(v.st.delays, d)
			v.st.mu.Unlock()
		}
	}
}

// partLocation is the URL of a part URI from the playlist: the playlist's directory joined
// with it when it is a plain relative path (every server measured writes those), else resolved
// as a URL.
func (v *viewer) partLocation(uri []byte) string {
	if bytes.ContainsAny(uri, ":/") || bytes.HasPrefix(uri, []byte(".")) {
		return resolve(v.media, string(uri)).String()
	}
	if v.dir == "" {
		v.dir = v.media.Scheme + "://" + v.media.Host + v.media.EscapedPath()
		v.dir = v.dir[:strings.LastIndexByte(v.dir, '/')+1]
	}
	return v.dir + string(uri)
}

func resolve(base *url.URL, ref string) *url.URL {
	r, err := url.Parse(ref)
	if err != nil {
		return base
	}
	return base.ResolveReference(r)
}

// FindMax searches the highest viewer count that passes (ViewersReport.Pass): it grows from
// cfg.Viewers until a run fails, then bisects to within a tenth, each step a full run of
// cfg.Duration. The count found is run again until it has passed confirm runs in all (see
// findMax). Each step's report goes to cfg.Progress. It returns the highest passing count (when
// cfg.Viewers fails, the search bisects below it; 0 when nothing passes) and its last run's
// report.
func FindMax(ctx context.Context, cfg ViewersConfig, limit, confirm int) (int, ViewersReport, error) {
	out := cfg.Progress
	cfg.Progress = nil
	return findMax(max(1, cfg.Viewers), limit, confirm, func(n int) (ViewersReport, error) {
		c := cfg
		c.Viewers = n
		rep, _ := Viewers(ctx, c)
		if out != nil {
			fmt.Fprintf(out, "%6d viewers: p50 %v p99 %v stall %v errors %d: %v\n", n, rep.DelayP50.Round(time.Millisecond),
				rep.DelayP99.Round(time.Millisecond), rep.StallMax.Round(time.Millisecond), rep.ErrorCount(), map[bool]string{true: "pass", false: "fail"}[rep.Pass])
		}
		// Let the server drain the previous step's connections before the next.
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(2 * time.Second):
		}
		return rep, nil
	})
}

// findMax is FindMax's search over step, which runs n viewers. A count near the limit passes
// one run and fails the next as the cores' other work comes and goes, so the count found is
// run until it has passed confirm runs in all; when one fails, it becomes the upper bound and
// the search goes on below it, from the highest count that passed before.
func findMax(start, limit, confirm int, step func(n int) (ViewersReport, error)) (int, ViewersReport, error) {
	passed := map[int]ViewersReport{}
	good, bad := 0, 0
	for n := start; n <= limit; n = grow(n, passed[good]) {
		rep, err := step(n)
		if err != nil {
			return good, passed[good], err
		}
		if !rep.Pass {
			bad = n
			break
		}
		good, passed[n] = n, rep
	}
	for {
		for bad != 0 && bad-good > max(1, good/10) {
			n := (good + bad) / 2
			rep, err := step(n)
			if err != nil {
				return good, passed[good], err
			}
			if rep.Pass {
				good, passed[n] = n, rep
			} else {
				bad = n
			}
		}
		if good == 0 {
			return 0, ViewersReport{}, nil
		}
		confirmed := true
		for range confirm - 1 {
			rep, err := step(good)
			if err != nil {
				return good, passed[good], err
			}
			if !rep.Pass {
				confirmed = false
				break
			}
			passed[good] = rep
		}
		if confirmed {
			return good, passed[good], nil
		}
		bad, good = good, 0
		for n := range passed {
			if n < bad {
				good = max(good, n)
			}
		}
	}
}

// grow is the next count to try after n passed with rep: double while the p99 part delay is
// under half the part target, then half again. Part delay grows about linearly with viewers
// (every viewer is answered in the same burst when a part completes), so doubling past half
// the target overshoots into a meltdown of seconds-long delays, which starves every process
// on the cores: the publishing ffmpeg among them, and with it any other server it feeds.
func grow(n int, rep ViewersReport) int {
	if rep.PartTarget > 0 && rep.DelayP99 > rep.PartTarget/2 {
		return max(n+1, n*3/2)
	}
	return n * 2
}
