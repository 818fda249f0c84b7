package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"glasscast/redact"
)

// Webhook is one delivery target: a URL, optionally filtered by detail-type and channel.
type Webhook struct {
	URL         string
	DetailTypes []string // empty: every detail-type
	Channels    []string // channel ids; empty: every channel (and account-wide events)
}

// ParseWebhooks reads the events.webhooks option: comma-separated URLs, each optionally
// followed by a fragment of filters that is never sent, e.g.
//
//	https://hooks.example.com/ivs#types=stream-state|recording-state&channels=AbCdef1G2hij
//
// Types are the subject tokens (stream-state, stream-health, recording-state, limit-breach)
// or full detail-types; several are separated by "|", as channels are.
func ParseWebhooks(s string) ([]Webhook, error) {
	var out []Webhook
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("webhook %q: %w", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook %q: want an http:// or https:// URL", raw)
		}
		w := Webhook{}
		if u.Fragment != "" {
			q, err := url.ParseQuery(u.Fragment)
			if err != nil {
				return nil, fmt.Errorf("webhook %q: filters: %w", raw, err)
			}
			for k, vs := range q {
				for _, v := range vs {
					for _, item := range strings.Split(v, "|") {
						item = strings.TrimSpace(item)
						if item == "" {
							continue
						}
						switch k {
						case "types":
							dt, ok := DetailTypeOf(item)
							if !ok {
								return nil, fmt.Errorf("webhook %q: unknown event type %q (stream-state, stream-health, recording-state, limit-breach)", raw, item)
							}
							w.DetailTypes = append(w.DetailTypes, dt)
						case "channels":
							if strings.ContainsAny(item, ".*> \t") {
								return nil, fmt.Errorf("webhook %q: channel %q is not a channel id", raw, item)
							}
							w.Channels = append(w.Channels, item)
						default:
							return nil, fmt.Errorf("webhook %q: unknown filter %q (types, channels)", raw, k)
						}
					}
				}
			}
			u.Fragment, u.RawFragment = "", ""
		}
		w.URL = u.String()
		slices.Sort(w.DetailTypes)
		w.DetailTypes = slices.Compact(w.DetailTypes)
		slices.Sort(w.Channels)
		w.Channels = slices.Compact(w.Channels)
		out = append(out, w)
	}
	return out, nil
}

// filterSubjects are the stream subjects the webhook's consumer reads: the server filters, so a
// narrow webhook costs nothing for the events it does not want.
func (w Webhook) filterSubjects() []string {
	kindsOf := []string{"*"}
	if len(w.DetailTypes) > 0 {
		kindsOf = nil
		for _, dt := range w.DetailTypes {
			kindsOf = append(kindsOf, Kind(dt))
		}
	}
	chans := []string{"*"}
	if len(w.Channels) > 0 {
		chans = w.Channels
	}
	var out []string
	for _, k := range kindsOf {
		for _, c := range chans {
			out = append(out, subjectPrefix+k+"."+c)
		}
	}
	return out
}

// durable names the webhook's consumer after its URL and filters: the same configuration on
// any node, or after a restart, continues from the same position.
func (w Webhook) durable() string {
	h := sha256.Sum256([]byte(w.URL + "\n" + strings.Join(w.DetailTypes, "|") + "\n" + strings.Join(w.Channels, "|")))
	return "webhook_" + hex.EncodeToString(h[:8])
}

// DeliveryConfig configures webhook delivery.
type DeliveryConfig struct {
	Webhooks []Webhook
	// Secret signs every request (see Sign).
	Secret string
	// MinBackoff and MaxBackoff bound the wait between attempts (defaults 1 s and 60 s).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Retention is how long an undeliverable webhook keeps its place (the stream's MaxAge).
	Retention time.Duration
	Client    *http.Client
	Registry  prometheus.Registerer
	Logger    *slog.Logger
}

// Deliverer posts events to webhooks. Each webhook reads the stream through its own durable
// consumer with one message in flight, so events arrive in stream order (hence in order per
// channel) and a message is acknowledged only after the receiver answered 2xx: a restart
// continues where delivery stopped, and processes that share a webhook share its consumer.
type Deliverer struct {
	cfg        DeliveryConfig
	js         jetstream.JetStream
	log        *slog.Logger
	deliveries *prometheus.CounterVec
	delay      prometheus.Histogram
}

// NewDeliverer prepares delivery; Run delivers.
func NewDeliverer(js jetstream.JetStream, cfg DeliveryConfig) (*Deliverer, error) {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(60*time.Second, cfg.MinBackoff)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Deliverer{cfg: cfg, js: js, log: cfg.Logger,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glasscast_webhook_attempts_total",
			Help: "Webhook delivery attempts, by result (delivered, http_<status>, error)."}, []string{"result"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "glasscast_webhook_delivery_delay_seconds",
			Help:    "Time from an event's publication to its acknowledged delivery to a webhook.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}})}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{d.deliveries, d.delay} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("register webhook metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Run delivers to every webhook until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	errc := make(chan error, len(d.cfg.Webhooks))
	for _, w := range d.cfg.Webhooks {
		go func() { errc <- d.run(ctx, w) }()
	}
	var errs []error
	for range d.cfg.Webhooks {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// consumer creates the webhook's durable consumer, or finds it where a previous run left it.
// A new webhook starts with the events published from now on, not the stream's history.
func (d *Deliverer) consumer(ctx context.Context, w Webhook) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:           w.durable(),
		Description:       "webhook " + w.URL,
		FilterSubjects:    w.filterSubjects(),
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           ackWait,
		MaxAckPending:     1,
		MaxDeliver:        -1,
		InactiveThreshold: d.cfg.Retention,
	}
	if len(cfg.FilterSubjects) == 1 {
		cfg.FilterSubject, cfg.FilterSubjects = cfg.FilterSubjects[0], nil
	}
	return d.js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
}

func (d *Deliverer) run(ctx context.Context, w Webhook) error {
	log := d.log.With("webhook", redact.URL(w.URL, "webhook"))
	var cons jetstream.Consumer
	for cons == nil {
		c, err := d.consumer(ctx, w)
		if err == nil {
			cons = c
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("webhook consumer", "err", err)
		if !sleep(ctx, 2*time.Second) {
			return nil
		}
	}
	log.Info("delivering events to webhook", "filters", w.filterSubjects())
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) &&
				!strings.Contains(err.Error(), "timeout") {
				log.Debug("webhook fetch", "err", err)
				if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
					if c, cerr := d.consumer(ctx, w); cerr == nil {
						cons = c
					}
				}
				sleep(ctx, 500*time.Millisecond)
			}
			continue
		}
		d.deliver(ctx, log, w, msg)
	}
	return nil
}

// ackWait is how long the server waits for a delivering process before it hands the event to
// another (or, after a restart, to the same webhook again). It is short, and a process working
// on an event says so every ackWait/3, so an event held by a process that died, or by one that
// stopped (the server forgets a NAK across its own restart), is retried within seconds.
const ackWait = 6 * time.Second

// keepInProgress tells the server every ackWait/3 that msg is still being delivered, until the
// returned function is called.
func keepInProgress(msg jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// deliver posts one event until the receiver takes it, backing off between attempts. When
// ctx ends first the message is handed back at once, for the next run or another process.
func (d *Deliverer) deliver(ctx context.Context, log *slog.Logger, w Webhook, msg jetstream.Msg) {
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		if md, err := msg.Metadata(); err == nil {
			id = fmt.Sprintf("seq-%d", md.Sequence.Stream)
		}
	}
	defer keepInProgress(msg)()
	backoff := d.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err := d.post(ctx, w.URL, id, msg.Data())
		if err == nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if aerr := msg.DoubleAck(actx); aerr != nil {
				log.Warn("acknowledge delivered event", "id", id, "err", aerr)
			}
			cancel()
			if md, merr := msg.Metadata(); merr == nil {
				d.delay.Observe(time.Since(md.Timestamp).Seconds())
			}
			log.Debug("event delivered", "id", id, "attempt", attempt)
			return
		}
		if ctx.Err() != nil {
			_ = msg.Nak()
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		lvl := slog.LevelInfo
		if attempt == 1 || attempt%10 == 0 {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "webhook delivery failed; retrying", "id", id, "attempt", attempt, "retryIn", wait.Round(time.Millisecond), "err", err)
		if !sleep(ctx, wait) {
			_ = msg.Nak()
			return
		}
		backoff = min(backoff*2, d.cfg.MaxBackoff)
	}
}

func (d *Deliverer) post(ctx context.Context, target, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "glasscast-events")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	if d.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, id, now, body))
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		d.deliveries.WithLabelValues("error").Inc()
		return redact.Err(err, "webhook")
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		d.deliveries.WithLabelValues(fmt.Sprintf("http_%d", resp.StatusCode)).Inc()
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	d.deliveries.WithLabelValues("delivered").Inc()
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
