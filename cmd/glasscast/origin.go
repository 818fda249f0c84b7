package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"glasscast/auth"
	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/push"
	"glasscast/store"
)

// startOrigin holds broadcasts in memory. Under serve the ingest and edge call it in process;
// with origin.listen set it also answers playback and pushes from ingests in other processes.
func (n *node) startOrigin(ctx context.Context) error {
	cfg := n.cfg
	org := origin.New(origin.Config{Region: cfg.Region, Account: cfg.Account, Window: cfg.OriginWindow,
		Linger: cfg.OriginLinger, DateRanges: cfg.OriginDateRanges, PartHoldBack: cfg.OriginPartHoldBack, Logger: n.log.With("role", "origin"),
		// A broadcast whose ingest died is ended once its registration expired; the idle
		// bound outlasts a publisher's reconnect grace, while the ingest keeps pushing.
		Live: func(channelID string) (string, bool) {
			l, ok := n.store.Live.Get(channelID)
			return l.StreamID, ok && time.Since(l.UpdatedAt) < store.LiveTTL
		},
		IdleEnd: cfg.ReconnectGrace + 5*time.Second})
	n.defer_(func() { _ = org.Close() })
	n.localOrigin = org
	if n.roles&roleEdge == 0 {
		// No edge in this process: the HTTP listeners serve the origin directly.
		n.playback = publicOnly(org, n.store)
	}
	if cfg.OriginListen == "" {
		return nil
	}
	token, err := n.pushToken(ctx)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(media.PlaybackPrefix, org)
	mux.Handle("/_push/", http.StripPrefix("/_push", push.NewHandler(org, push.HandlerConfig{Token: token})))
	ln, err := net.Listen("tcp", cfg.OriginListen)
	if err != nil {
		return fmt.Errorf("origin listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	n.goRole(func() {
		go func() {
			<-ctx.Done()
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(c)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("origin listener", "err", err)
		}
	})
	n.log.Info("origin listening", "addr", ln.Addr().String(), "publicUrl", n.originURL(ln.Addr()))
	n.originPublic = n.originURL(ln.Addr())
	return nil
}

// originURL is the base URL other processes use to reach this origin.
func (n *node) originURL(addr net.Addr) string {
	if n.cfg.OriginPublicURL != "" {
		return n.cfg.OriginPublicURL
	}
	return "http://" + addr.String()
}

// pushToken is the secret ingests present to origins; every node joined by NATS shares it.
func (n *node) pushToken(ctx context.Context) (string, error) {
	if n.cfg.OriginPushToken != "" {
		return n.cfg.OriginPushToken, nil
	}
	return n.store.Secret(ctx, "origin-push-token", auth.NewSecret)
}

// tlsConfig is the certificate shared by RTMPS and HTTPS.
func (n *node) tlsConfig() (*tls.Config, error) {
	cert, err := auth.LoadCertificate(n.cfg.TLSCert, n.cfg.TLSKey, n.cfg.DataDir, []string{n.cfg.IngestHost, n.cfg.NodeName})
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// publicOnly serves playback of public channels from h, an origin, which checks no playback
// tokens: a private channel's is refused (403), so that a process without an edge does not hand
// its broadcast to anyone who knows its URL. Private channels play through an edge.
func publicOnly(h http.Handler, st *store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := media.ParsePlaybackPath(r.URL.Path); ok {
			if ch, ok := st.Channels.Get(t.ChannelID); ok && ch.Authorized {
				w.Header().Set("X-Glasscast-Reason", "private channel: play it through an edge")
				http.Error(w, "Forbidden", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
