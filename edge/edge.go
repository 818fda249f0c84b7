// Package edge is the viewer-facing tier: a caching proxy in front of origins (or other edges)
// that coalesces concurrent misses into one upstream request, fans growing segments out as
// they arrive, checks playback tokens for private channels and counts viewers.
package edge

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"glasscast/auth"
	"glasscast/loopback"
	"glasscast/media"
	"glasscast/store"
	"glasscast/viewers"
)

// Config is an edge's configuration.
type Config struct {
	Region, Account string
	// CacheBytes bounds the bytes of cached objects (default 512 MiB).
	CacheBytes int
	// Upstream, when set, is where this edge fills from: a comma-separated failover list of
	// origins or shield edges ("http://shield-a:8080,http://shield-b:8080"), tried in order.
	// Otherwise Local, then Directory, then the origins in live registrations, nearest first.
	Upstream string
	// Local is an origin in the same process (`serve`).
	Local http.Handler
	// Directory, when set, replaces discovery through live registrations.
	Directory Directory
	// Here is where this edge runs; discovered origins in the same region (and zone) go first.
	Here Place
	// ProbeInterval is the first wait before a failed upstream is probed again; the wait doubles
	// up to ProbeMax (defaults 500 ms and 5 s).
	ProbeInterval, ProbeMax time.Duration
	// UpstreamTimeout bounds waiting for an upstream answer and for each body chunk (default
	// 5 s); BlockingTimeout replaces it for LL-HLS blocking requests (default 10 s, more than
	// the origin's three target durations).
	UpstreamTimeout time.Duration
	BlockingTimeout time.Duration
	// TokenBinding binds private channels' viewer sessions to the viewer's address (default
	// BindAddress). SessionMaxAge bounds a session (default 12 h): its media playlist URLs
	// stop working then; ObjectTokenTTL bounds the object URLs each media playlist renews
	// (default 60 s). Now is the clock tokens are checked against (default time.Now).
	TokenBinding   Binding
	SessionMaxAge  time.Duration
	ObjectTokenTTL time.Duration
	Now            func() time.Time
	// Countries tells viewers' countries for playback restriction policies.
	Countries Countries
	// ViewerAddrKey verifies the viewer address a playback director asserts for the viewer it
	// fetches a multivariant playlist for (auth.ViewerAddrHeader); nil trusts none.
	ViewerAddrKey []byte
}

// Edge serves playback paths from its cache.
type Edge struct {
	cfg     Config
	store   *store.Store
	cache   *Cache
	tokens  *TokenVerifier
	viewers *viewers.Tracker
	gzip    gzipper
	log     *slog.Logger

	restrictions restrictions // compiled playback restriction policies
	countries    *Countries

	life     context.Context // ends when the edge's owner stops: probers stop with it
	dir      Directory
	inflight atomic.Int64 // playback requests being answered, part of Load

	mu  sync.Mutex
	ups map[string]*upstream // by base URL, with their breakers
}

// upstream is one place the edge fills from and what the edge knows of its health.
type upstream struct {
	Upstream
	breaker *Breaker
}

// New returns an edge. st provides channels, playback keys and live registrations.
func New(ctx context.Context, cfg Config, st *store.Store, tracker *viewers.Tracker, log *slog.Logger) (*Edge, error) {
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 512 << 20
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = 5 * time.Second
	}
	if cfg.BlockingTimeout == 0 {
		cfg.BlockingTimeout = 10 * time.Second
	}
	if cfg.TokenBinding == "" {
		cfg.TokenBinding = BindAddress
	}
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = 12 * time.Hour
	}
	if cfg.ObjectTokenTTL == 0 {
		cfg.ObjectTokenTTL = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	secret, err := st.Secret(ctx, "edge-token-key", auth.NewSecret)
	if err != nil {
		return nil, fmt.Errorf("edge token key: %w", err)
	}
	if tracker == nil {
		tracker = viewers.NewTracker()
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 500 * time.Millisecond
	}
	if cfg.ProbeMax == 0 {
		cfg.ProbeMax = 5 * time.Second
	}
	e := &Edge{cfg: cfg, store: st, cache: NewCache(cfg.CacheBytes), viewers: tracker, log: log, life: ctx, ups: map[string]*upstream{},
		tokens: &TokenVerifier{store: st, region: cfg.Region, account: cfg.Account, secret: []byte(secret), now: time.Now}}
	e.countries = &e.cfg.Countries
	go e.restrictions.watch(ctx, st.PlaybackPolicies, func(id string) string {
		return fmt.Sprintf("arn:aws:ivs:%s:%s:playback-restriction-policy/%s", cfg.Region, cfg.Account, id)
	})
	switch {
	case cfg.Upstream != "":
		e.dir = ParseStatic(cfg.Upstream)
	case cfg.Local != nil:
		const local = "http://origin.local"
		e.dir = Static{local}
		e.ups[local] = e.newUpstream(Upstream{Base: local, Client: &http.Client{Transport: &loopback.Transport{Handler: cfg.Local}}})
	case cfg.Directory != nil:
		e.dir = cfg.Directory
	default:
		e.dir = LiveOrigins{Store: st, Here: cfg.Here}
	}
	e.tokens.now, e.tokens.binding = cfg.Now, cfg.TokenBinding
	e.tokens.sessionMaxAge, e.tokens.objectTTL = cfg.SessionMaxAge, cfg.ObjectTokenTTL
	return e, nil
}

// Load is how busy the edge is, as the playback director compares edges: viewer sessions seen
// in the last viewers.Window plus requests being answered.
func (e *Edge) Load() int64 {
	n := e.inflight.Load()
	for _, sessions := range e.viewers.Snapshot(time.Now()) {
		n += int64(len(sessions))
	}
	return n
}

func (e *Edge) newUpstream(u Upstream) *upstream {
	probe := func(ctx context.Context) error {
		// Any HTTP answer means the upstream is up again; only its requests tell if it serves.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Base+"/healthz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "glasscast-edge-probe")
		resp, err := u.Client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("probe: %s", resp.Status)
		}
		return nil
	}
	return &upstream{Upstream: u, breaker: NewBreaker(u.Base, probe, e.cfg.ProbeInterval, e.cfg.ProbeMax, e.log)}
}

// Stats returns the cache's counters.
func (e *Edge) Stats() CacheStats { return e.cache.Stats() }

// upstreams lists where a channel's objects come from, in failover order: the directory's
// order with upstreams whose breaker is open moved to the end, so they are tried only as a last
// resort, when every other upstream failed too.
func (e *Edge) upstreams(channelID string) []*upstream {
	bases := e.dir.Upstreams(channelID)
	if len(bases) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*upstream, 0, len(bases))
	var skipped []*upstream
	for _, base := range bases {
		up, ok := e.ups[base]
		if !ok {
			up = e.newUpstream(NewHTTPUpstream(base))
			e.ups[base] = up
		}
		if up.breaker.Allow() {
			out = append(out, up)
		} else {
			skipped = append(skipped, up)
		}
	}
	return append(out, skipped...)
}

// request is what the edge needs of a viewer's request, whichever server received it.
type request struct {
	method     string
	path       string
	rawQuery   string
	origin     string // Origin header
	country    string // the country header (Countries.Header), when configured
	acceptGzip bool
	userAgent  string

	// The viewer's address (ip) is worked out from these only when a request needs it: a
	// part's does not, and formatting it for each cost 2 % of the edge's CPU.
	peerIP   net.IP // the peer, on fasthttp
	peerHost string // the peer, on net/http
	asserted string // the address a playback director asserts (auth.ViewerAddrHeader)
	addrKey  []byte // verifies asserted
	addr     string // the viewer's address, once worked out
}

// response is the edge's answer: either body, or obj streamed from its start.
type response struct {
	status  int
	headers [][2]string
	body    []byte
	obj     *object
}

func (r *response) set(k, v string) { r.headers = append(r.headers, [2]string{k, v}) }

func plain(status int, reason string) response {
	r := response{status: status, body: []byte(http.StatusText(status) + "\n")}
	r.set("Content-Type", "text/plain; charset=utf-8")
	r.set("Cache-Control", "no-cache")
	r.set("Access-Control-Allow-Origin", "*")
	if reason != "" {
		r.set("X-Glasscast-Reason", reason)
	}
	return r
}

// cacheKey is what a request is cached under and asked upstream as: the path and, for a media
// playlist, its delivery directives (the only query that reaches the upstream), never the
// viewer's token or session. The directives go in a fixed order and canonical form, numbers
// as the origin reads them and _HLS_skip only with a value that means something, so that every
// spelling of one request shares one key and one upstream fill; on other paths they change
// nothing and are left out. blocking is whether the upstream holds the request (_HLS_msn;
// _HLS_skip alone is a plain reload). A malformed or repeated number is refused here, as the
// origin would refuse it, without an upstream request.
func cacheKey(path string, kind pathKind, q url.Values) (key string, blocking bool, err error) {
	if kind != mediaPlaylistPath {
		return path, false, nil
	}
	var b strings.Builder
	b.WriteString(path)
	sep := byte('?')
	add := func(k, v string) {
		b.WriteByte(sep)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		sep = '&'
	}
	for _, d := range []struct {
		name string
		bits int
	}{{"_HLS_msn", 64}, {"_HLS_part", 31}} {
		vs, ok := q[d.name]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(vs[0], 10, d.bits)
		if err != nil || len(vs) > 1 {
			return "", false, fmt.Errorf("malformed or repeated %s", d.name)
		}
		add(d.name, strconv.FormatUint(n, 10))
	}
	for _, v := range q["_HLS_skip"] {
		if v == "YES" || v == "v2" {
			add("_HLS_skip", v)
			break
		}
	}
	return b.String(), q.Has("_HLS_msn"), nil
}

// serve answers one playback request.
func (e *Edge) serve(ctx context.Context, r request) response {
	switch r.method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		resp := response{status: http.StatusNoContent}
		resp.set("Access-Control-Allow-Origin", "*")
		resp.set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		resp.set("Access-Control-Allow-Headers", "*")
		resp.set("Access-Control-Max-Age", "86400")
		return resp
	default:
		return plain(http.StatusMethodNotAllowed, "")
	}
	e.inflight.Add(1)
	defer e.inflight.Add(-1)
	t, ok := media.ParsePlaybackPath(r.path)
	if !ok || t.Region != e.cfg.Region || t.Account != e.cfg.Account {
		return plain(http.StatusNotFound, "")
	}
	ch, ok := e.store.Channels.Get(t.ChannelID)
	if !ok {
		return plain(http.StatusNotFound, "no such channel")
	}
	var q url.Values // nil for most part requests, which carry no query
	if r.rawQuery != "" {
		var err error
		if q, err = url.ParseQuery(r.rawQuery); err != nil {
			return plain(http.StatusBadRequest, "malformed query")
		}
	}

	// Who is watching, and may they?
	session := q.Get("vs")
	child, report := url.Values{}, url.Values{} // the queries of child URIs and of rendition reports
	allowOrigin := "*"
	var g grant
	kind, token := objectPath, q.Get("token")
	switch {
	case t.Rendition == "":
		kind = multivariantPath
	case strings.HasSuffix(t.File, ".m3u8"):
		kind = mediaPlaylistPath
	}
	if !ch.Authorized && ch.PlaybackRestrictionPolicyArn != "" { // IVS ignores policies on private channels
		var reason string
		if reason, allowOrigin = e.restrict(ch.PlaybackRestrictionPolicyArn, kind, &r); reason != "" {
			return plain(http.StatusForbidden, reason)
		}
	}
	if ch.Authorized {
		var err error
		g, err = e.tokens.check(ctx, token, ch.ID, kind, r.origin, r.ip())
		if err != nil {
			return e.refuse(ch.ID, err)
		}
		if g.Session == "" {
			g.Session = newSession()
		}
		session = g.Session
		allowOrigin = g.allowOrigin(kind, r.origin)
	} else if t.Rendition == "" && session == "" {
		session = newSession()
	}
	if session != "" && !ch.Authorized {
		// The session goes into the URIs of playlists only: every player reloads one, which
		// counts it, and a media playlist then stays the same for all its viewers (but for its
		// rendition reports), so it is rewritten and compressed once, not once per viewer.
		if kind == multivariantPath {
			child.Set("vs", session)
		}
		report.Set("vs", session)
	}
	for k, vs := range q {
		if k == "token" && ch.Authorized || k == "vs" || strings.HasPrefix(k, "_HLS_") {
			continue
		}
		child[k], report[k] = vs, vs
	}
	switch {
	case session != "":
		e.viewers.Seen(ch.ID, hash64(session), time.Now())
	case kind != objectPath:
		// A player without a session is told by its address; its objects are not counted, as
		// the playlist it reloads is.
		e.viewers.Seen(ch.ID, r.clientKey(), time.Now())
	}

	key, blocking, err := cacheKey(r.path, kind, q)
	if err != nil {
		return plain(http.StatusBadRequest, err.Error())
	}
	o, fill := e.cache.lookup(key, time.Now())
	if fill {
		go e.fetch(o, e.upstreams(ch.ID), key, blocking)
	}
	select {
	case <-o.ready: // most often already: no timer is started for ctx
	default:
		select {
		case <-o.ready:
		case <-ctx.Done():
			return plain(http.StatusGatewayTimeout, "")
		}
	}
	if ch.Authorized {
		e.childTokens(child, report, g, kind, token, r.ip())
	}
	// A public media playlist's child query is the same for all its viewers (see "vs" above);
	// a multivariant's names the viewer's session and a private channel's the viewer's tokens.
	shared := !ch.Authorized && kind == mediaPlaylistPath
	resp := e.answer(ctx, r, o, child.Encode(), report.Encode(), allowOrigin, shared)
	// A single-use token is spent by the request that succeeds with it, not by one refused or
	// answered 404 because the broadcast has not started.
	if resp.status == http.StatusOK {
		if err := e.tokens.spend(ctx, g); err != nil {
			return e.refuse(ch.ID, err)
		}
	}
	return resp
}

// childTokens writes a private channel's tokens into the child and rendition-report queries,
// once the answer is ready, so that a blocking reload does not eat into their lifetime. Media
// playlist URLs carry a session token: players reload the URL the multivariant gave them for the
// whole broadcast, so it lasts the session and is passed on unchanged. Object URLs carry a short
// token that each media playlist renews.
func (e *Edge) childTokens(child, report url.Values, g grant, kind pathKind, token, ip string) {
	sessionToken := token
	if kind == multivariantPath || g.Scope != scopePlaylists {
		ttl := e.cfg.SessionMaxAge
		if g.Viewer != "" { // a revocation must outlive every session it revokes
			ttl = min(ttl, store.RevocationTTL)
		}
		sessionToken = e.tokens.derive(g, scopePlaylists, ip, ttl)
	}
	report.Set("token", sessionToken)
	if kind == multivariantPath {
		child.Set("token", sessionToken)
	} else {
		child.Set("token", e.tokens.derive(g, scopeObjects, ip, e.cfg.ObjectTokenTTL))
	}
}

// refuse answers a failed token check: 403 with the reason, or 503 when the check itself
// could not be made.
func (e *Edge) refuse(channelID string, err error) response {
	var d denial
	if !errors.As(err, &d) {
		e.log.Warn("token check failed", "channel", channelID, "err", err)
		return plain(http.StatusServiceUnavailable, "token check unavailable")
	}
	return plain(http.StatusForbidden, d.Error())
}

// ip is the viewer's address, which sessions are bound to: the peer's, or the one a playback
// director asserts when it fetches a multivariant playlist for a viewer (signed with the key
// directors and edges share, so a viewer cannot claim another's address).
func (r *request) ip() string {
	if r.addr != "" {
		return r.addr
	}
	r.addr = r.peerHost
	if r.addr == "" && r.peerIP != nil {
		r.addr = r.peerIP.String()
	}
	if r.asserted != "" {
		if a, ok := auth.VerifyViewerAddr(r.addrKey, r.asserted, time.Now()); ok {
			r.addr = a.String()
		}
	}
	return r.addr
}

// clientKey identifies a viewer that gives no session: its address and User-Agent.
func (r *request) clientKey() uint64 { return hash64(r.ip() + "|" + r.userAgent) }

// answer builds the viewer's response from a ready object.
// shared says the child query is the same for every viewer of o (no per-viewer tokens), so
// the rewritten and compressed playlist is kept on o for them all.
func (e *Edge) answer(ctx context.Context, r request, o *object, childQuery, reportQuery, allowOrigin string, shared bool) response {
	// Room for every header: one allocation, not four.
	resp := response{status: o.status, headers: make([][2]string, 0, 8)}
	if allowOrigin != "" { // none for a request without Origin to an origin-restricted token
		resp.set("Access-Control-Allow-Origin", allowOrigin)
	}
	resp.set("Access-Control-Expose-Headers", "Age, Date, Content-Length")
	if allowOrigin != "*" {
		resp.set("Vary", "Origin")
	}
	if o.contentType != "" {
		resp.set("Content-Type", o.contentType)
	}
	now := time.Now()
	playlist := isPlaylist(o.contentType)
	if !o.expires.IsZero() || playlist {
		resp.set("Age", strconv.Itoa(int(o.age(now)/time.Second)))
	}
	cc := o.cacheControl
	if playlist && strings.Contains(childQuery, "token=") {
		// A playlist carrying a viewer's token must not be stored by shared caches.
		cc = strings.Replace(cc, "public", "private", 1)
	}
	if cc != "" {
		resp.set("Cache-Control", cc)
	}
	if o.status != http.StatusOK || !playlist {
		// An object of known length (a part, a complete segment) goes out whole, at link speed,
		// once it is all here; one the upstream streams (a growing segment) streams on.
		if o.length >= 0 {
			if err := o.wait(ctx); err != nil {
				return plain(http.StatusBadGateway, "upstream object incomplete")
			}
		}
		if body, ok := o.complete(); ok {
			resp.body = body
		} else {
			resp.obj = o
		}
		if o.encoding != "" {
			resp.set("Content-Encoding", o.encoding)
		}
		return resp
	}
	// Playlists are small: wait for the whole body, then write the viewer's query in.
	if err := o.wait(ctx); err != nil {
		return plain(http.StatusBadGateway, "upstream playlist incomplete")
	}
	body, _ := o.complete()
	var rd *rendered
	if shared {
		rd, _ = o.render.get(body, childQuery, &e.gzip) // on an error, rendered per viewer
	}
	if r.acceptGzip {
		var gz []byte
		var err error
		if rd != nil {
			gz, err = rd.gzip(&e.gzip, reportQuery)
		} else {
			gz, err = e.gzip.compress(appendQuery(body, childQuery, reportQuery))
		}
		if err == nil {
			resp.body = gz
			resp.set("Content-Encoding", "gzip")
			if allowOrigin != "*" { // one Vary header: the servers keep the last one set
				resp.set("Vary", "Origin, Accept-Encoding")
			} else {
				resp.set("Vary", "Accept-Encoding")
			}
			return resp
		}
	}
	if rd != nil {
		resp.body = rd.body(reportQuery)
	} else {
		resp.body = appendQuery(body, childQuery, reportQuery)
	}
	return resp
}

func newSession() string { return auth.RandomString(16, "abcdefghijklmnopqrstuvwxyz0123456789") }

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
