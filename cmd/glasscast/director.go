package main

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"glasscast/director"
	"glasscast/media"
	"glasscast/store"
)

// directorConfig is the playback director's part of the configuration.
type directorConfig struct {
	Enabled        bool
	CIDRRegions    string
	RegionHeader   string
	CountryRegions string
}

// startDirector answers multivariant playlist requests for the nearest healthy edge. In a
// process that also serves playback (an edge, or serve), the director takes the multivariant
// requests viewers make and leaves the rest, and its own requests (marked director.Hop), to
// the edge, so it never asks itself.
func (n *node) startDirector(ctx context.Context) error {
	cfg := n.cfg
	loc, err := director.NewLocator(cfg.Director.CIDRRegions, cfg.Director.RegionHeader, cfg.Director.CountryRegions, cfg.NodeRegion)
	if err != nil {
		return err
	}
	key, err := n.viewerAddrKey(ctx)
	if err != nil {
		return err
	}
	d := director.New(ctx, director.Config{Region: cfg.Region, Account: cfg.Account, Locator: loc, ViewerAddrKey: key},
		director.StoreRegistry{Store: n.store}, n.log.With("role", "director"))
	viewerMultivariant := func(path string, hop bool) bool {
		t, ok := media.ParsePlaybackPath(path)
		return ok && t.Rendition == "" && !hop
	}
	if inner := n.playback; inner != nil {
		n.playback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if viewerMultivariant(r.URL.Path, r.Header.Get(director.Hop) != "") {
				d.ServeHTTP(w, r)
				return
			}
			inner.ServeHTTP(w, r)
		})
	} else {
		n.playback = d
	}
	if fast := n.fastPB; fast != nil {
		viaNetHTTP := fasthttpadaptor.NewFastHTTPHandler(d)
		n.fastPB = func(ctx *fasthttp.RequestCtx) {
			if viewerMultivariant(string(ctx.Path()), len(ctx.Request.Header.Peek(director.Hop)) > 0) {
				viaNetHTTP(ctx)
				return
			}
			fast(ctx)
		}
	}
	return nil
}

// announce keeps this node in the node registry while it runs, when it has something to
// announce: an origin other processes reach (edges order origins by region) or an edge
// (the director sends viewers to it).
func (n *node) announce(ctx context.Context) {
	cfg := n.cfg
	rec := store.Node{Name: cfg.NodeName, Region: cfg.NodeRegion, Zone: cfg.NodeZone, OriginURL: n.originPublic}
	for _, r := range []struct {
		bit  role
		name string
	}{{roleControl, "control"}, {roleIngest, "ingest"}, {roleOrigin, "origin"}, {roleEdge, "edge"}, {roleArchive, "archive"}, {roleDirector, "director"}} {
		if n.roles&r.bit != 0 {
			rec.Roles = append(rec.Roles, r.name)
		}
	}
	var load func() int64
	if n.edge != nil {
		rec.EdgeURL = edgePublicURL(cfg)
		load = n.edge.Load
	}
	if rec.OriginURL == "" && rec.EdgeURL == "" {
		return
	}
	n.goRole(func() {
		if err := n.store.Heartbeat(ctx, rec, load); err != nil {
			n.log.Error("node registry", "err", err)
		}
	})
}

// edgePublicURL is edge.publicUrl, or http://<http.listen> with the node name for a missing
// or wildcard host.
func edgePublicURL(cfg *Config) string {
	if cfg.EdgePublicURL != "" {
		return strings.TrimSuffix(cfg.EdgePublicURL, "/")
	}
	host, port, err := net.SplitHostPort(cfg.HTTPListen)
	if err != nil {
		return "http://" + cfg.HTTPListen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = cfg.NodeName
	}
	return "http://" + net.JoinHostPort(host, port)
}
