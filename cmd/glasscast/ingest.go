package main

import (
	"context"
	"errors"
	"strings"

	"glasscast/ingest"
	"glasscast/ingest/rtmp"
	"glasscast/media"
	"glasscast/origin/push"
)

// startIngest accepts publishers (RTMP, RTMPS) and feeds the origin: in process under serve,
// over HTTP to ingest.originUrls otherwise (to several at once for failover).
func (n *node) startIngest(ctx context.Context) error {
	cfg := n.cfg
	var sink media.Sink
	var origins []string
	switch {
	case cfg.IngestOriginURLs != "":
		token, err := n.pushToken(ctx)
		if err != nil {
			return err
		}
		var sinks []media.TeeSink
		for _, u := range strings.Split(cfg.IngestOriginURLs, ",") {
			u = strings.TrimSuffix(strings.TrimSpace(u), "/")
			// The tee retries a failed origin for the whole broadcast; the client's own
			// retries only ride out a single lost request.
			c := push.NewClient(push.ClientConfig{URL: u + "/_push", Token: token, Retries: 1})
			sinks = append(sinks, media.TeeSink{Name: u, Sink: c})
			origins = append(origins, u)
		}
		sink = media.NewTee(media.TeeConfig{QueueBytes: int64(cfg.IngestPushQueueMB) << 20, RetryMax: cfg.IngestPushRetry,
			Logger: n.log.With("role", "ingest")}, sinks...)
	case n.localOrigin != nil:
		sink = n.localOrigin
		if n.originPublic != "" {
			origins = []string{n.originPublic}
		}
	default:
		return errors.New("the ingest role needs an origin: run it with the origin role or set ingest.originUrls")
	}
	tlsCfg, err := n.tlsConfig()
	if err != nil {
		return err
	}
	log := n.log.With("role", "ingest")
	in := ingest.New(ingest.Config{
		Node: cfg.NodeName, Origins: origins, PartTarget: cfg.PartTarget, SegmentTarget: cfg.SegmentTarget,
		ReconnectGrace: cfg.ReconnectGrace, Transcode: cfg.Transcode.ingest(),
		Events: n.streamEvents(), Meters: n.ingestMeters(),
	}, n.store, n.bus.Conn, sink, log)
	// Each protocol listens on its own ports and publishes through the same session.
	rt := rtmp.New(rtmp.Config{Listen: cfg.RTMPListen, TLSListen: cfg.RTMPSListen, TLS: tlsCfg,
		MaxPending: cfg.IngestMaxPending, MaxPendingPerIP: cfg.IngestMaxPendingPerIP,
		MaxPublishers: cfg.IngestMaxPublishers, HandshakeTimeout: cfg.IngestHandshakeTimeout,
	}, in, log)
	addrs, err := rt.Listen()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		n.log.Info("ingest listening", "addr", a.String())
	}
	n.goRole(func() { _ = in.Serve(ctx, rt) })
	return nil
}
