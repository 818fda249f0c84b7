package main

import (
	"context"
	"fmt"

	"glasscast/auth"
	"glasscast/edge"
	"glasscast/player"
	"glasscast/viewers"
)

// startEdge serves playback on the HTTP listeners from a cache filled from the in-process
// origin, configured upstreams (shield edges or origins, in failover order), or the origins
// named in live registrations, nearest first.
func (n *node) startEdge(ctx context.Context) error {
	cfg := n.cfg
	ec := edge.Config{Region: cfg.Region, Account: cfg.Account, CacheBytes: cfg.EdgeCacheMB << 20, Upstream: cfg.EdgeUpstream,
		Here: edge.Place{Region: cfg.NodeRegion, Zone: cfg.NodeZone}}
	if ec.Upstream == "" && n.localOrigin != nil {
		ec.Local = n.localOrigin
	}
	binding, err := edge.ParseBinding(cfg.EdgeTokenBinding)
	if err != nil {
		return err
	}
	ec.TokenBinding, ec.SessionMaxAge, ec.ObjectTokenTTL = binding, cfg.EdgeSessionMaxAge, cfg.EdgeObjectTokenTTL
	if ec.ViewerAddrKey, err = n.viewerAddrKey(ctx); err != nil {
		return err
	}
	ec.Countries.Header = cfg.EdgeCountryHeader
	if cfg.EdgeGeoIPDatabase != "" {
		if ec.Countries.DB, err = edge.OpenCountryDB(cfg.EdgeGeoIPDatabase); err != nil {
			return err
		}
		db := ec.Countries.DB
		n.goRole(func() { <-ctx.Done(); db.Close() })
	}
	tracker := viewers.NewTracker()
	e, err := edge.New(ctx, ec, n.store, tracker, n.log.With("role", "edge"))
	if err != nil {
		return err
	}
	n.edge = e
	n.playback = e
	n.fastPB = e.ServeFastHTTP
	n.goRole(func() { viewers.Publish(ctx, n.bus.Conn, cfg.NodeName, tracker, viewerReportInterval, n.log) })
	n.mux.Handle("/player/", player.New(player.Config{Region: cfg.Region, Account: cfg.Account}))
	return nil
}

// viewerAddrKey is the key with which playback directors assert a viewer's address to edges;
// every node joined by NATS shares it.
func (n *node) viewerAddrKey(ctx context.Context) ([]byte, error) {
	k, err := n.store.Secret(ctx, "viewer-address-key", auth.NewSecret)
	if err != nil {
		return nil, fmt.Errorf("viewer address key: %w", err)
	}
	return []byte(k), nil
}
