// Package director is the playback director: it answers a channel's multivariant playlist
// request for the nearest healthy edge, so the one playback URL IVS users know sends each
// viewer to an edge of its own region. Edges announce themselves and their load in the node
// registry; the viewer's region comes from a trusted header or a CIDR table.
package director

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"glasscast/auth"
	"glasscast/media"
	"glasscast/store"
)

// Hop marks the director's own requests to edges. A node that runs an edge and a director
// answers requests carrying it from its edge, so a director never asks itself.
const Hop = "X-Glasscast-Director"

// Config is a director's configuration.
type Config struct {
	Region, Account string // the deployment's AWS region and account, as in playback paths
	Locator         *Locator
	// StaleAfter is how old an edge's heartbeat may be (default store.NodeTTL).
	StaleAfter time.Duration
	// ProbeInterval is how often every edge's /healthz is checked (default 1 s).
	ProbeInterval time.Duration
	// FetchTimeout bounds one multivariant fetch from an edge (default 3 s).
	FetchTimeout time.Duration
	// ViewerAddrKey signs the viewer's address for the edge (auth.ViewerAddrHeader), which binds
	// a private channel's session to the viewer, not to the director. Edges share it.
	ViewerAddrKey []byte
}

// Director answers multivariant playlist requests.
type Director struct {
	cfg    Config
	reg    Registry
	health *health
	client *http.Client
	log    *slog.Logger
}

// New returns a director whose prober runs until ctx ends.
func New(ctx context.Context, cfg Config, reg Registry, log *slog.Logger) *Director {
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = store.NodeTTL
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = time.Second
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 3 * time.Second
	}
	if cfg.Locator == nil {
		cfg.Locator = &Locator{}
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // the body is rewritten here
		},
		// An edge never redirects; a redirect would be somebody else's answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d := &Director{cfg: cfg, reg: reg, health: newHealth(client), client: client, log: log}
	go d.health.probeLoop(ctx, reg, cfg.ProbeInterval)
	return d
}

// Choose returns the edges a viewer in region may be sent to, best first.
func (d *Director) Choose(region string) []Edge {
	return d.health.rank(d.reg.Edges(), region, time.Now(), d.cfg.StaleAfter)
}

// ServeHTTP answers a multivariant playlist request by fetching it from the chosen edge and
// returning it with absolute child URIs to that edge.
//
// Why not a 302 to the edge: hls.js (it resolves against xhr.responseURL), gohlslib (the
// final request URL) and Safari resolve relative URIs against the redirected URL, and the IVS
// player's worker reads fetch's response.url, so a redirect would mostly work. But a browser
// that follows a cross-origin redirect sends "Origin: null" to the edge, which breaks tokens
// with aws:strict-origin-enforcement and any edge answering Access-Control-Allow-Origin with
// the page's origin; and whether a player keeps the redirected URL as the base of later
// reloads is each player's choice. A playlist whose child URIs are absolute plays the same in
// every player, so the director fetches it (one small request per viewer join; the viewer's
// token, Origin and session reach the edge, which verifies the token and writes its derived
// token into the child URIs as always) and rewrites only the URIs.
func (d *Director) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		hdr.Set("Access-Control-Allow-Headers", "*")
		hdr.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	t, ok := media.ParsePlaybackPath(r.URL.Path)
	if !ok || t.Rendition != "" || t.Region != d.cfg.Region || t.Account != d.cfg.Account {
		// Only multivariant playlists come here; everything else is fetched from an edge.
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	region := d.cfg.Locator.Region(r)
	edges := d.Choose(region)
	if len(edges) == 0 {
		hdr.Set("X-Glasscast-Reason", "no healthy edge")
		http.Error(w, "no healthy edge", http.StatusServiceUnavailable)
		return
	}
	var last *fetched
	for _, e := range edges {
		f, err := d.fetch(r, e)
		if err != nil && r.Context().Err() != nil {
			return // the viewer hung up: that says nothing of the edge, and nobody is waiting
		}
		if err != nil {
			// The edge is gone or hung: leave it out until a probe finds it again.
			d.health.markDown(e.URL, true)
			d.log.Warn("edge failed; trying the next", "edge", e.Name, "url", e.URL, "err", err)
			continue
		}
		last = f
		if f.status >= 500 {
			continue // its upstream failed; another edge may do better
		}
		d.health.assigned(e)
		break
	}
	if last == nil {
		http.Error(w, "no edge answered", http.StatusBadGateway)
		return
	}
	for _, k := range []string{"Content-Type", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary", "X-Glasscast-Reason"} {
		if v := last.header.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	// The playlist names this viewer's edge, token and session: nobody else may reuse it.
	hdr.Set("Cache-Control", "private, no-store")
	hdr.Set("X-Glasscast-Edge", last.edge.Name)
	hdr.Set("X-Glasscast-Viewer-Region", region)
	w.WriteHeader(last.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(last.body)
	}
}

// fetched is an edge's answer.
type fetched struct {
	edge   Edge
	status int
	header http.Header
	body   []byte
}

// fetch asks edge e for the viewer's multivariant playlist (query kept, Origin passed on so
// strict-origin tokens hold) and makes its child URIs absolute.
func (d *Director) fetch(r *http.Request, e Edge) (*fetched, error) {
	base, err := url.Parse(e.URL + r.URL.Path)
	if err != nil {
		return nil, fmt.Errorf("edge url: %w", err)
	}
	base.RawQuery = r.URL.RawQuery
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"Origin", "User-Agent", "Referer"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set(Hop, "1")
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && len(d.cfg.ViewerAddrKey) > 0 {
		if addr, err := netip.ParseAddr(host); err == nil {
			req.Header.Set(auth.ViewerAddrHeader, auth.SignViewerAddr(d.cfg.ViewerAddrKey, addr.Unmap(), time.Now()))
		}
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read playlist: %w", err)
	}
	if resp.StatusCode == http.StatusOK && bytes.HasPrefix(body, []byte("#EXTM3U")) {
		body = absolute(body, base)
	}
	return &fetched{edge: e, status: resp.StatusCode, header: resp.Header, body: body}, nil
}
