package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Upstream is where an edge fills its cache from: an origin or another (shield) edge.
type Upstream struct {
	// Base is the scheme and host ("http://origin:8080"); requests keep their path.
	Base   string
	Client *http.Client
}

// NewHTTPUpstream returns an upstream reached over the network, with connections kept alive and
// enough of them for many blocking requests at once.
func NewHTTPUpstream(base string) Upstream {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true, // playlists are rewritten here; the edge compresses itself
		ResponseHeaderTimeout: 0,    // bounded per request, since blocking reloads wait by design
		ForceAttemptHTTP2:     false,
	}
	return Upstream{Base: strings.TrimSuffix(base, "/"), Client: &http.Client{Transport: tr}}
}

// fillTimeouts bound one upstream fill.
type fillTimeouts struct {
	header time.Duration // until the upstream answers
	idle   time.Duration // between body bytes
}

// fetch fills o from the first upstream that answers, then streams its body into o. It runs
// detached from any viewer: a viewer that leaves does not cancel what others wait for.
func (e *Edge) fetch(o *object, ups []*upstream, pathAndQuery string, directive bool) {
	keep, h := false, hold{}
	defer func() { e.cache.settle(o, keep, h) }()
	to := fillTimeouts{header: e.cfg.UpstreamTimeout, idle: e.cfg.UpstreamTimeout}
	if directive {
		to.header = e.cfg.BlockingTimeout
	}
	if len(ups) == 0 {
		// Nothing holds the channel: it is offline. Players expect 404 for that (the IVS
		// player's ErrorNotAvailable); 502 and 504 are for upstreams that fail.
		e.fail(o, http.StatusNotFound, errors.New("no upstream holds this channel"))
		return
	}
	var resp *http.Response
	var cancel context.CancelFunc
	var err error
	var from *upstream
	for _, up := range ups {
		resp, cancel, err = e.request(up.Upstream, pathAndQuery, to.header)
		if err == nil {
			up.breaker.Success()
			from = up
			break
		}
		// The breaker logs the outage once; each failed request only at debug level.
		up.breaker.Failure(e.life, err)
		e.log.Debug("upstream failed", "upstream", up.Base, "path", pathAndQuery, "err", err)
	}
	if err != nil {
		status := http.StatusBadGateway
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			status = http.StatusGatewayTimeout
		}
		e.fail(o, status, err)
		return
	}
	defer cancel()
	defer resp.Body.Close()

	now := time.Now()
	o.status = resp.StatusCode
	o.contentType = resp.Header.Get("Content-Type")
	o.cacheControl = resp.Header.Get("Cache-Control")
	o.encoding = resp.Header.Get("Content-Encoding")
	o.length = resp.ContentLength
	if a, err := strconv.Atoi(resp.Header.Get("Age")); err == nil && a > 0 {
		o.upstreamAge = time.Duration(a) * time.Second
	}
	o.fetched = now
	ttl, cacheable := cachePolicy(o.status, o.cacheControl)
	if cacheable && ttl > 0 {
		o.expires = now.Add(ttl - o.upstreamAge)
	}
	close(o.ready)
	if o.status == http.StatusOK && !isPlaylist(o.contentType) {
		e.cache.arrived(o.key)
	}

	// Copy the body as it arrives; a stall longer than the idle timeout aborts the fill so no
	// cache keeps a truncated object.
	buf := make([]byte, 32<<10)
	watchdog := time.AfterFunc(to.idle, cancel)
	defer watchdog.Stop()
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(to.idle)
			o.append(buf[:n])
		}
		if rerr == io.EOF {
			o.finish(nil)
			keep = cacheable
			if d, hint, live := liveLowLatencyPlaylist(o); live && !directive {
				keep, h = cacheable && d > 0, hold{until: o.fetched.Add(d), hint: hint}
			}
			return
		}
		if rerr != nil {
			o.finish(fmt.Errorf("upstream body: %w", rerr))
			from.breaker.Failure(e.life, rerr)
			return
		}
	}
}

// request sends the upstream GET and waits for its header at most headerTimeout. The returned
// cancel ends the body.
func (e *Edge) request(up Upstream, pathAndQuery string, headerTimeout time.Duration) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.Base+pathAndQuery, nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "glasscast-edge")
	timer := time.AfterFunc(headerTimeout, cancel)
	resp, err := up.Client.Do(req)
	stopped := timer.Stop()
	if err != nil {
		cancel()
		if !stopped {
			return nil, nil, fmt.Errorf("no answer within %v: %w", headerTimeout, context.DeadlineExceeded)
		}
		return nil, nil, err
	}
	if !stopped { // the answer raced the timer: the context is already cancelled
		resp.Body.Close()
		cancel()
		return nil, nil, fmt.Errorf("no answer within %v: %w", headerTimeout, context.DeadlineExceeded)
	}
	return resp, cancel, nil
}

// fail answers every waiter of o with an error status; the object is not cached.
func (e *Edge) fail(o *object, status int, err error) {
	o.status = status
	o.contentType = "text/plain; charset=utf-8"
	o.fetched = time.Now()
	o.length = -1
	close(o.ready)
	o.append([]byte(http.StatusText(status) + "\n"))
	o.finish(nil)
	e.log.Debug("fill failed", "key", o.key, "status", status, "err", err)
}

// liveLowLatencyPlaylist reports a live LL-HLS media playlist, how long a plain (no
// directive) copy of it may be reused, half its PART-TARGET, and the cache key of the part its
// preload hint names ("" if none can be told). It is current only until the next part, so it
// is not kept for its max-age: a copy a second old next to a fresh delta update would look
// like time going back, and would start a tuning-in player a second late. But not keeping it
// at all made every plain request a fill (an upstream request, a render and a gzip; twice a
// part's cost on serve, and an origin request per poll behind a tier), so players that poll
// plain playlists (the IVS player reloads one a segment, as non-LL players do) cost the
// upstream one request each. Held half a part, a copy is at most that much older than its
// upstream's (which may hold one too, behind a tier), and a rendition costs its upstream two or
// three plain fills a part: a copy is also dropped as soon as its hinted part reaches this
// cache (Cache.overtaken, Cache.arrived). Viewers at the live edge use blocking requests, which
// are cached per directive.
func liveLowLatencyPlaylist(o *object) (d time.Duration, hint string, live bool) {
	if !isPlaylist(o.contentType) || o.status != http.StatusOK {
		return 0, "", false
	}
	body, _ := o.complete()
	i := bytes.Index(body, []byte("#EXT-X-PART-INF:"))
	if i < 0 || bytes.Contains(body, []byte("#EXT-X-ENDLIST")) {
		return 0, "", false
	}
	return partTarget(body[i:]) / 2, hintKey(o.key, body), true
}

// hintKey is the cache key of the part that playlist body, cached under key, names in its
// EXT-X-PRELOAD-HINT: the URI's path resolved against the playlist's, as a player requests it.
// "" when there is no such hint or its URI is absolute.
func hintKey(key string, body []byte) string {
	i := bytes.Index(body, []byte("#EXT-X-PRELOAD-HINT:"))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(body[i:], []byte("\n"))
	if !bytes.Contains(line, []byte("TYPE=PART")) {
		return ""
	}
	start, end, ok := attrURI(line)
	if !ok {
		return ""
	}
	base, err := url.Parse(key)
	if err != nil {
		return ""
	}
	ref, err := url.Parse(string(line[start:end]))
	if err != nil || ref.Host != "" {
		return ""
	}
	return base.ResolveReference(ref).Path
}

// partTarget reads PART-TARGET from the playlist text starting at its EXT-X-PART-INF tag; 0
// when it is missing or malformed.
func partTarget(tag []byte) time.Duration {
	line, _, _ := bytes.Cut(tag, []byte("\n"))
	_, v, ok := bytes.Cut(line, []byte("PART-TARGET="))
	if !ok {
		return 0
	}
	if j := bytes.IndexByte(v, ','); j >= 0 {
		v = v[:j]
	}
	secs, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	if err != nil || secs <= 0 || secs > 60 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// cachePolicy decides how long a response may be reused. Immutable objects (init, parts,
// segments) stay until evicted (ttl 0); playlists live for their max-age; errors are shared by
// concurrent waiters but kept at most a second.
func cachePolicy(status int, cacheControl string) (ttl time.Duration, cacheable bool) {
	cc := strings.ToLower(cacheControl)
	if strings.Contains(cc, "no-store") || strings.Contains(cc, "no-cache") || strings.Contains(cc, "private") {
		return 0, false
	}
	maxAge := -1
	for _, f := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				maxAge = n
			}
		}
	}
	switch {
	case status >= 500:
		return 0, false
	case status != http.StatusOK:
		if maxAge <= 0 {
			return 0, false
		}
		return min(time.Duration(maxAge)*time.Second, time.Second), true
	case strings.Contains(cc, "immutable"):
		return 0, true
	case maxAge > 0:
		return time.Duration(maxAge) * time.Second, true
	}
	return 0, false
}
