package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"glasscast/auth"
	"glasscast/bus"
	"glasscast/control"
	"glasscast/ingest"
	"glasscast/ingestctl"
	"glasscast/media"
	"glasscast/origin"
	"glasscast/store"
)

// role is a bit set of the roles a process runs.
type role uint

const (
	roleControl role = 1 << iota
	roleIngest
	roleOrigin
	rolesAll = roleControl | roleIngest | roleOrigin
)

// runNode starts the given roles with shared NATS and HTTP listeners and runs until ctx ends.
func runNode(ctx context.Context, name string, args []string, roles role) error {
	started := time.Now()
	cfg := defaultConfig()
	if err := load(name, cfg.options(), args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := cfg.logger()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	b, err := bus.Open(ctx, bus.Config{URL: cfg.NATSURL, CredsFile: cfg.NATSCreds, DataDir: cfg.DataDir, Listen: cfg.NATSListen, Name: cfg.NodeName}, log)
	if err != nil {
		return err
	}
	defer b.Close()
	// The store's watchers live as long as the process, and stop before the bus closes.
	storeCtx, stopStore := context.WithCancel(context.Background())
	defer stopStore()
	st, err := store.Open(storeCtx, b.JS)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}

	mux := http.NewServeMux()
	var api *control.Server
	if roles&roleControl != 0 {
		key, err := accessKey(cfg)
		if err != nil {
			return err
		}
		api = control.New(control.Config{
			Region: cfg.Region, Account: cfg.Account,
			Secret: func(id string) (string, bool) {
				if id == key.AccessKeyID {
					return key.SecretAccessKey, true
				}
				return "", false
			},
			PlaybackBaseURL: cfg.PlaybackBaseURL, IngestHost: cfg.IngestHost, Quotas: cfg.Quotas,
		}, st, &ingestctl.Client{NC: b.Conn}, nil, log.With("role", "control"))
	}
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if api != nil && api.Handles(r) {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	var org *origin.Origin
	if roles&roleOrigin != 0 {
		org = origin.New(origin.Config{Region: cfg.Region, Account: cfg.Account, Window: cfg.OriginWindow,
			Linger: cfg.OriginLinger, Logger: log.With("role", "origin")})
		defer org.Close()
		mux.Handle(media.PlaybackPrefix, org)
	}
	var roleWG sync.WaitGroup
	roleCtx, stopRoles := context.WithCancel(ctx)
	defer func() {
		stopRoles()
		roleWG.Wait()
	}()
	if roles&roleIngest != 0 {
		if org == nil {
			return errors.New("the ingest role needs an origin in the same process")
		}
		cert, err := auth.LoadCertificate(cfg.TLSCert, cfg.TLSKey, cfg.DataDir, []string{cfg.IngestHost, cfg.NodeName})
		if err != nil {
			return err
		}
		in := ingest.New(ingest.Config{
			RTMPListen: cfg.RTMPListen, RTMPSListen: cfg.RTMPSListen,
			TLS:  &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			Node: cfg.NodeName, PartTarget: cfg.PartTarget, SegmentTarget: cfg.SegmentTarget,
			ReconnectGrace: cfg.ReconnectGrace,
		}, st, b.Conn, org, log.With("role", "ingest"))
		listeners, err := in.Listen()
		if err != nil {
			return err
		}
		for _, l := range listeners {
			log.Info("ingest listening", "addr", l.Addr().String())
		}
		roleWG.Add(1)
		go func() {
			defer roleWG.Done()
			_ = in.Serve(roleCtx, listeners)
		}()
	}

	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	srv := &http.Server{Handler: root, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("glasscast ready", "roles", name, "http", ln.Addr().String(), "nats", natsDescription(cfg, b),
		"dataDir", cfg.DataDir, "startup", time.Since(started).Round(time.Millisecond))

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	}
	log.Info("shutting down")
	// Publishers go first so their broadcasts end cleanly while playback still answers.
	stopRoles()
	roleWG.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

func natsDescription(cfg *Config, b *bus.Bus) string {
	if cfg.NATSURL != "" {
		return cfg.NATSURL
	}
	if u := b.ClientURL(); u != "" {
		return "embedded, listening on " + u
	}
	return "embedded"
}

// accessKey returns the configured API credential, or the one kept in the data folder,
// created and shown once on first start.
func accessKey(cfg *Config) (auth.AccessKey, error) {
	if cfg.AccessKeyID != "" {
		return auth.AccessKey{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey}, nil
	}
	k, created, err := auth.LoadOrCreateAccessKey(cfg.DataDir)
	if err != nil {
		return k, err
	}
	if created {
		// Printed on the terminal once, never logged: it is the only way to learn the secret
		// besides reading credentials.json in the data folder.
		fmt.Fprintf(os.Stdout, "\nCreated an API access key (stored in %s/credentials.json):\n  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n  export AWS_REGION=%s\n\n",
			cfg.DataDir, k.AccessKeyID, k.SecretAccessKey, cfg.Region)
	}
	return k, nil
}
