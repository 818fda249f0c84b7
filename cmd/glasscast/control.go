package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"glasscast/auth"

	"glasscast/archive/bucket"
	"glasscast/console"
	"glasscast/control"
	"glasscast/events"
	"glasscast/ingestctl"
	"glasscast/player"
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
	secret := func(id string) (string, bool) {
		if id == key.AccessKeyID {
			return key.SecretAccessKey, true
		}
		return "", false
	}
	api := control.New(control.Config{
		Region: cfg.Region, Account: cfg.Account,
		Secret:          secret,
		PlaybackBaseURL: cfg.PlaybackBaseURL, IngestHost: cfg.IngestHost, Quotas: cfg.Quotas,
		SRTEndpoint: cfg.SRTEndpoint, SRTPort: portOf(cfg.SRTListen),
		Chat: n.chatAPI, Metrics: n.metricsReader(),
		// Policies naming countries are accepted only where edges can enforce them: a control
		// node reads the same edge options as the edges it serves.
		CountryLookup: cfg.EdgeCountryHeader != "" || cfg.EdgeGeoIPDatabase != "",
	}, n.store, &ingestctl.Client{NC: n.bus.Conn}, counter.Viewers, n.log.With("role", "control"))
	n.api, n.apiMatch = api, api.Handles
	var buckets console.Buckets
	if stores, err := cfg.buckets(); err == nil {
		buckets = consoleBuckets{cfg: cfg, stores: stores}
	} else {
		n.log.Warn("console: recordings not shown", "err", err)
	}
	// The web console signs in with the same keys and runs the same operations.
	n.mux.Handle("/console/", console.New(console.Config{
		Secret: secret, API: api, Vendor: player.Vendor(), Ingest: ingestPorts(cfg),
		Region: cfg.Region, Account: cfg.Account, Log: n.log.With("role", "control", "part", "console"),
		Events: func(ctx context.Context, types, channels []string, since time.Duration, out io.Writer) error {
			tc := events.TailConfig{Channels: channels, Since: since}
			for _, t := range types {
				dt, ok := events.DetailTypeOf(t)
				if !ok {
					return fmt.Errorf("unknown event type %q", t)
				}
				tc.DetailTypes = append(tc.DetailTypes, dt)
			}
			return events.Tail(ctx, n.bus.JS, tc, out)
		},
		Buckets: buckets,
		Webhooks: func(ctx context.Context) (any, error) {
			hooks, err := events.ParseWebhooks(cfg.Monitoring.Webhooks)
			if err != nil {
				return nil, err
			}
			return events.WebhookStates(ctx, n.bus.JS, hooks)
		},
	}))
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

// ingestPorts names the ingest listeners with their ports, for the console's ingest URLs.
func ingestPorts(cfg *Config) map[string]string {
	out := map[string]string{}
	for proto, addr := range map[string]string{"rtmps": cfg.RTMPSListen, "rtmp": cfg.RTMPListen, "srt": cfg.SRTListen} {
		if _, port, err := net.SplitHostPort(addr); err == nil && port != "" {
			out[proto] = port
		}
	}
	return out
}

// consoleBuckets lets the console read recordings where the archive writes them.
type consoleBuckets struct {
	cfg    *Config
	stores *bucket.Stores
}

func (b consoleBuckets) reader(bucketName string) (*recordingReader, error) {
	return newRecordingReader(b.cfg, b.stores, bucketName), nil
}

func (b consoleBuckets) Keys(r *http.Request, bucketName, prefix string) ([]string, error) {
	rr, err := b.reader(bucketName)
	if err != nil {
		return nil, err
	}
	return rr.keys(r.Context(), prefix)
}

func (b consoleBuckets) Open(r *http.Request, bucketName, key string) (io.ReadCloser, error) {
	rr, err := b.reader(bucketName)
	if err != nil {
		return nil, err
	}
	return rr.open(r.Context(), key)
}

// portOf is the port of a listen address, or "" for none.
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}
