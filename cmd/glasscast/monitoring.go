package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"glasscast/archive"
	"glasscast/auth"
	"glasscast/control"
	"glasscast/events"
	"glasscast/metrics"
	"glasscast/netlimit"
	"glasscast/store"
	"glasscast/viewers"
)

// monitoringConfig is the events and metrics part of Config.
type monitoringConfig struct {
	Webhooks          string
	WebhookSecret     string
	WebhookMaxBackoff time.Duration
	EventsMaxAge      time.Duration
	EventsMaxMB       int
	Record            bool
	MaxIngestMbps     float64
	MetricsListen     string
	MetricsToken      string
}

func defaultMonitoringConfig() monitoringConfig {
	return monitoringConfig{WebhookMaxBackoff: time.Minute, EventsMaxAge: 7 * 24 * time.Hour, EventsMaxMB: 1024, Record: true, MaxIngestMbps: 8.5}
}

// monitoring is what the node's roles share to report: the Prometheus registry behind
// /metrics, the events publisher, and the meters of the ingest and archive roles.
type monitoring struct {
	reg      *prometheus.Registry
	pub      *events.Publisher
	meters   *metrics.Ingest
	recorded *metrics.Recorded
	store    *metrics.Store
}

// startMonitoring serves /metrics (serveMetrics) and starts what reports from this
// node's roles: events from ingests and archives, ingest and recording meters, and, with the
// control role, the CloudWatch metrics recorder and webhook delivery. It runs before the
// other roles, which pick up what it made.
func (n *node) startMonitoring(ctx context.Context) error {
	cfg := n.cfg.Monitoring
	log := n.log.With("role", "monitoring")
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.serveMetrics(ctx, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})); err != nil {
		return err
	}
	m := &monitoring{reg: reg}
	n.mon = m
	n.monitorServers()

	var err error
	if n.roles&(roleIngest|roleArchive|roleControl) != 0 {
		m.pub, err = events.NewPublisher(ctx, n.bus.JS, events.PublisherConfig{
			Envelope: events.Envelope{Region: n.cfg.Region, Account: n.cfg.Account},
			MaxAge:   cfg.EventsMaxAge, MaxBytes: int64(cfg.EventsMaxMB) << 20, Registry: reg, Logger: log,
			Replication: n.store.Replication})
		if err != nil {
			return err
		}
	}
	if n.roles&roleIngest != 0 {
		limits := metrics.IngestLimits{MaxBitrate: cfg.MaxIngestMbps * 1e6, Events: m.pub}
		if m.meters, err = metrics.NewIngest(n.bus.Conn, reg, limits, log); err != nil {
			return err
		}
		n.goRole(func() { m.meters.Run(ctx) })
	}
	if n.roles&roleArchive != 0 {
		if m.recorded, err = metrics.NewRecorded(n.bus.Conn, reg, log); err != nil {
			return err
		}
		n.goRole(func() { m.recorded.Run(ctx) })
	}
	if n.roles&roleControl == 0 {
		return nil
	}
	if cfg.Record {
		if err := n.startRecorder(ctx, m); err != nil {
			return err
		}
	}
	return n.startWebhooks(ctx, m)
}

// bearerIf is bearer(token, h), or h when token is empty.
func bearerIf(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return bearer(token, h)
}

// serveMetrics serves /metrics where metrics.listen and metrics.token say. It lists live
// channel ids (private channels' too) and their ingest bit rates, which IVS shows no one but
// the account: so it is never public. With metrics.listen it is served only on that (private)
// address; otherwise on the public listeners behind a bearer token, generated once when
// metrics.token is not set.
func (n *node) serveMetrics(ctx context.Context, h http.Handler) error {
	cfg := n.cfg.Monitoring
	if cfg.MetricsListen != "" {
		if cfg.MetricsToken != "" {
			h = bearer(cfg.MetricsToken, h)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h)
		// The private address also answers Go's profiles and execution traces, to find what
		// makes delivery wait on a loaded node; one lock contention event in 100 is sampled.
		runtime.SetMutexProfileFraction(100)
		mux.Handle("GET /debug/pprof/", bearerIf(cfg.MetricsToken, http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", bearerIf(cfg.MetricsToken, http.HandlerFunc(pprof.Profile)))
		mux.Handle("GET /debug/pprof/trace", bearerIf(cfg.MetricsToken, http.HandlerFunc(pprof.Trace)))
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		n.goRole(func() {
			go func() {
				<-ctx.Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("metrics listener", "err", err)
			}
		})
		n.log.Info("metrics listening", "addr", ln.Addr().String())
		return nil
	}
	token := cfg.MetricsToken
	if token == "" {
		const name = "metrics-token"
		_, existed := n.store.Secrets.Get(name)
		var err error
		if token, err = n.store.Secret(ctx, name, auth.NewSecret); err != nil {
			return err
		}
		if !existed {
			// On the terminal once, never in the log, like the API key.
			fmt.Fprintf(os.Stdout, "\nCreated the /metrics bearer token (kept in NATS; set metrics.token to choose one, or metrics.listen for a private address):\n  %s\n\n", token)
		}
	}
	n.mux.Handle("GET /metrics", bearer(token, h))
	return nil
}

// bearer lets through requests that carry "Authorization: Bearer <token>".
func bearer(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="glasscast-metrics"`)
			http.Error(w, "metrics need a bearer token (metrics.token)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// monitorListeners exposes the connections of the public listeners and those refused at a cap.
func (n *node) monitorListeners(l *netlimit.Limiter) {
	if n.mon == nil {
		return
	}
	n.mon.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glasscast_http_connections", Help: "Connections open on the HTTP and HTTPS listeners."},
			func() float64 { return float64(l.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glasscast_http_connections_refused_total",
			Help: "Connections closed at accept because http.maxConns or http.maxConnsPerIp was reached."},
			func() float64 { return float64(l.Refused()) }))
}

// startRecorder keeps the aggregates behind GetMetricData.
func (n *node) startRecorder(ctx context.Context, m *monitoring) error {
	st, err := metrics.OpenStore(ctx, n.bus.JS, n.store.Replication)
	if err != nil {
		return err
	}
	m.store = st
	counter, err := viewers.Count(ctx, n.bus.Conn, 3*viewerReportInterval)
	if err != nil {
		return err
	}
	rec, err := metrics.NewRecorder(st, n.bus.Conn, metrics.RecorderConfig{
		Viewers: counter.All,
		Live: func() map[string]string {
			out := map[string]string{}
			for _, it := range n.store.Live.List() {
				if time.Since(it.Value.UpdatedAt) < store.LiveTTL {
					out[it.Key] = it.Value.Health
				}
			}
			return out
		},
		Registry: m.reg, Logger: n.log.With("role", "metrics"),
	})
	if err != nil {
		return err
	}
	n.goRole(func() {
		if err := rec.Run(ctx); err != nil {
			n.log.Error("metrics recorder stopped", "err", err)
		}
	})
	return nil
}

// startWebhooks delivers events to the configured webhooks.
func (n *node) startWebhooks(ctx context.Context, m *monitoring) error {
	cfg := n.cfg.Monitoring
	hooks, err := events.ParseWebhooks(cfg.Webhooks)
	if err != nil || len(hooks) == 0 {
		return err
	}
	secret := cfg.WebhookSecret
	if secret == "" {
		const name = "events-webhook-secret"
		_, existed := n.store.Secrets.Get(name)
		if secret, err = n.store.Secret(ctx, name, events.NewSecret); err != nil {
			return err
		}
		if !existed {
			// On the terminal once, never in the log, like the API key.
			fmt.Fprintf(os.Stdout, "\nCreated the webhook signing secret (kept in NATS; set events.webhookSecret to choose one):\n  %s\n\n", secret)
		}
	}
	d, err := events.NewDeliverer(n.bus.JS, events.DeliveryConfig{Webhooks: hooks, Secret: secret,
		MaxBackoff: cfg.WebhookMaxBackoff, Retention: cfg.EventsMaxAge, Registry: m.reg,
		Client: &http.Client{Transport: http.DefaultTransport}, Logger: n.log.With("role", "events")})
	if err != nil {
		return err
	}
	n.goRole(func() {
		if err := d.Run(ctx); err != nil {
			n.log.Error("webhook delivery stopped", "err", err)
		}
	})
	return nil
}

// streamEvents is what the ingest reports stream changes to (nil when nothing publishes).
func (n *node) streamEvents() events.StreamEvents {
	if n.mon == nil || n.mon.pub == nil {
		return nil
	}
	return n.mon.pub
}

// ingestMeters is what the ingest measures its input with.
func (n *node) ingestMeters() metrics.IngestMeters {
	if n.mon == nil || n.mon.meters == nil {
		return metrics.NopIngest{}
	}
	return n.mon.meters
}

// metricsReader answers the control API's CloudWatch operations (nil when not recording).
func (n *node) metricsReader() control.MetricsReader {
	if n.mon == nil || n.mon.store == nil {
		return nil
	}
	return n.mon.store
}

// monitorArchive reports the archive's recording events and recorded time, and its upload
// queue. It returns the archive configuration's Events and Recorded hooks.
func (n *node) monitorArchive() (archive.Events, func(string, time.Duration)) {
	m := n.mon
	if m == nil || m.pub == nil {
		return nil, nil
	}
	ev := archive.EventsFunc(func(ctx context.Context, e archive.Event) {
		m.pub.RecordingEvent(ctx, events.RecordingChange{Status: e.Status, ChannelID: e.ChannelID, ChannelName: e.ChannelName,
			StreamID: e.StreamID, StreamIDs: e.StreamIDs, Reason: e.Reason, Bucket: e.Bucket, Prefix: e.Prefix,
			DurationMS: e.DurationMS, RecordingID: e.RecordingID, Time: e.Time})
	})
	var rec func(string, time.Duration)
	if m.recorded != nil {
		rec = m.recorded.Add
	}
	return ev, rec
}

// monitorSpool exposes the archive's upload queue.
func (n *node) monitorSpool(a *archive.Archive) {
	if n.mon == nil {
		return
	}
	n.mon.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glasscast_archive_spool_bytes",
		Help: "Recorded bytes waiting in the spool for upload to S3."}, func() float64 { return float64(a.SpoolUsed()) }))
}

// monitorChat exposes the chat connections of this node's edge.
func (n *node) monitorChat(srv interface{ Conns() int }) {
	if n.mon == nil {
		return
	}
	n.mon.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glasscast_chat_connections",
		Help: "Open IVS Chat WebSocket connections on this node."}, func() float64 { return float64(srv.Conns()) }))
}

// monitorServers exposes the edge's cache and the origin's request counters. The functions
// read the roles at scrape time: they start after this, before the listeners open.
func (n *node) monitorServers() {
	reg := n.mon.reg
	if n.roles&roleEdge != 0 {
		edgeStat := func(f func(h, m, c, e uint64, objs, bytes, filling int) float64) func() float64 {
			return func() float64 {
				if n.edge == nil {
					return 0
				}
				s := n.edge.Stats()
				return f(s.Hits, s.Misses, s.Coalesced, s.Evictions, s.Objects, s.Bytes, s.Filling)
			}
		}
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glasscast_edge_cache_hits_total", Help: "Edge requests answered from the cache."},
				edgeStat(func(h, _, _, _ uint64, _, _, _ int) float64 { return float64(h) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glasscast_edge_cache_misses_total", Help: "Edge requests that started an upstream fill."},
				edgeStat(func(_, m, _, _ uint64, _, _, _ int) float64 { return float64(m) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glasscast_edge_coalesced_total", Help: "Edge requests that waited on another request's fill (request coalescing)."},
				edgeStat(func(_, _, c, _ uint64, _, _, _ int) float64 { return float64(c) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glasscast_edge_cache_evictions_total", Help: "Objects evicted from the edge cache."},
				edgeStat(func(_, _, _, e uint64, _, _, _ int) float64 { return float64(e) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glasscast_edge_cache_objects", Help: "Objects in the edge cache."},
				edgeStat(func(_, _, _, _ uint64, o, _, _ int) float64 { return float64(o) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glasscast_edge_cache_bytes", Help: "Bytes in the edge cache."},
				edgeStat(func(_, _, _, _ uint64, _, b, _ int) float64 { return float64(b) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glasscast_edge_fills_in_flight", Help: "Upstream fills under way."},
				edgeStat(func(_, _, _, _ uint64, _, _, f int) float64 { return float64(f) })),
		)
	}
	if n.roles&roleOrigin != 0 {
		reg.MustRegister(&originCollector{n: n,
			requests: prometheus.NewDesc("glasscast_origin_requests_total", "Requests the origin served, by kind.", []string{"kind"}, nil),
			blocked:  prometheus.NewDesc("glasscast_origin_blocked_requests", "Requests held by the origin right now (blocking reloads, hinted parts, streamed segments).", nil, nil),
			held:     prometheus.NewDesc("glasscast_origin_held_bytes", "Init and part bytes the origin holds in memory.", nil, nil),
			bcasts:   prometheus.NewDesc("glasscast_origin_broadcasts", "Broadcasts the origin holds, live or lingering.", nil, nil),
		})
	}
}

// originCollector reads origin.Stats at scrape time.
type originCollector struct {
	n                               *node
	requests, blocked, held, bcasts *prometheus.Desc
}

func (c *originCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.blocked
	ch <- c.held
	ch <- c.bcasts
}

func (c *originCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.n.localOrigin
	if o == nil {
		return
	}
	s := o.Stats()
	for kind, v := range map[string]uint64{"multivariant": s.Multivariant, "playlist": s.Playlists, "blocking_playlist": s.BlockingPlaylists,
		"part": s.Parts, "segment": s.Segments, "init": s.Inits} {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(v), kind)
	}
	ch <- prometheus.MustNewConstMetric(c.blocked, prometheus.GaugeValue, float64(s.Blocked))
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.HeldBytes))
	ch <- prometheus.MustNewConstMetric(c.bcasts, prometheus.GaugeValue, float64(s.Broadcasts))
}

// runEvents is `glasscast events tail`.
func runEvents(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "tail" {
		return errors.New("usage: glasscast events tail --nats-url nats://host:4222 [--types stream-state,...] [--channels id,...] [--since 1h] [--count N]")
	}
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	url := fs.String("nats-url", os.Getenv("GLASSCAST_NATS_URL"), "NATS URL of the deployment (a serve process started with --nats-listen, or the cluster)")
	creds := fs.String("nats-creds", os.Getenv("GLASSCAST_NATS_CREDS"), "NATS credentials file")
	user := fs.String("nats-user", os.Getenv("GLASSCAST_NATS_USER"), "NATS user (see dataDir/nats-credentials.json of a serve process)")
	password := fs.String("nats-password", os.Getenv("GLASSCAST_NATS_PASSWORD"), "password of --nats-user")
	token := fs.String("nats-token", os.Getenv("GLASSCAST_NATS_TOKEN"), "NATS token")
	tlsCA := fs.String("nats-tls-ca", os.Getenv("GLASSCAST_NATS_TLS_CA"), "PEM CA certificates that verify the NATS servers")
	types := fs.String("types", "", "comma-separated event types: stream-state, stream-health, recording-state, limit-breach (default all)")
	chans := fs.String("channels", "", "comma-separated channel ids (default all)")
	since := fs.Duration("since", 0, "first print the events of this long ago, then follow (default: new events only)")
	count := fs.Int("count", 0, "exit after this many events (default: follow until interrupted)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("--nats-url is required (start serve with --nats-listen 127.0.0.1:4222 to reach its embedded NATS)")
	}
	cfg := events.TailConfig{Since: *since, Count: *count}
	for _, t := range splitList(*types) {
		dt, ok := events.DetailTypeOf(t)
		if !ok {
			return fmt.Errorf("unknown event type %q", t)
		}
		cfg.DetailTypes = append(cfg.DetailTypes, dt)
	}
	cfg.Channels = splitList(*chans)
	opts := []nats.Option{nats.Name("glasscast events tail")}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	if *user != "" {
		opts = append(opts, nats.UserInfo(*user, *password))
	}
	if *token != "" {
		opts = append(opts, nats.Token(*token))
	}
	if *tlsCA != "" {
		opts = append(opts, nats.RootCAs(*tlsCA))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return events.Tail(ctx, js, cfg, os.Stdout)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
