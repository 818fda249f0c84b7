package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"glasscast/auth"

	"glasscast/control"
	"glasscast/ingestctl"
	"glasscast/viewers"
)

// startControl serves the IVS API on the HTTP listeners.
func (n *node) startControl(ctx context.Context) error {
	cfg := n.cfg
	key, err := accessKey(cfg)
	if err != nil {
		return err
	}
	counter, err := viewers.Count(ctx, n.bus.Conn, 3*viewerReportInterval)
	if err != nil {
		return err
	}
	api := control.New(control.Config{
		Region: cfg.Region, Account: cfg.Account,
		Secret: func(id string) (string, bool) {
			if id == key.AccessKeyID {
				return key.SecretAccessKey, true
			}
			return "", false
		},
		PlaybackBaseURL: cfg.PlaybackBaseURL, IngestHost: cfg.IngestHost, Quotas: cfg.Quotas,
		SRTEndpoint: cfg.SRTEndpoint, SRTPort: portOf(cfg.SRTListen),
		Chat: n.chatAPI, Metrics: n.metricsReader(),
	}, n.store, &ingestctl.Client{NC: n.bus.Conn}, counter.Viewers, n.log.With("role", "control"))
	n.api, n.apiMatch = api, api.Handles
	// Sessions left open by a crashed ingest (or a killed serve) are ended here: every control
	// node sweeps, and compare-and-set on the session makes one of them do it.
	reaper := &control.Reaper{Store: n.store, Events: n.streamEvents(), Log: n.log.With("role", "control")}
	n.goRole(func() { reaper.Run(ctx) })
	return nil
}

// viewerReportInterval is how often edges publish their viewer sessions.
const viewerReportInterval = 2 * time.Second

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

// portOf is the port of a listen address, or "" for none.
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}
