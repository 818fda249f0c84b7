package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"glasscast/bus"
)

// StreamName is the JetStream stream that keeps events; subjects are
// glasscast.events.<kind>.<channel id> (kind: stream-state, stream-health, recording-state,
// limit-breach; channel "_account" for account-wide limit breaches).
const StreamName = "GLASSCAST_EVENTS"

const subjectPrefix = "glasscast.events."

// Subject is where an event is published.
func Subject(ev Event) string {
	ch := ev.ChannelID()
	if ch == "" {
		ch = accountToken
	}
	return subjectPrefix + Kind(ev.DetailType) + "." + ch
}

// StreamConfig is the events stream: on disk, kept MaxAge (and at most MaxBytes), with
// duplicate detection so that a publish retried after a lost acknowledgement is stored once.
func StreamConfig(maxAge time.Duration, maxBytes int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "IVS EventBridge events (glasscast events)",
		Subjects:    []string{subjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  2 * time.Minute,
	}
}

// Publisher emits events onto the events stream. Its methods are safe for concurrent use;
// callers that need order (one channel's changes) call it from one goroutine at a time.
type Publisher struct {
	env       Envelope
	js        jetstream.JetStream
	log       *slog.Logger
	published *prometheus.CounterVec
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Envelope
	// MaxAge and MaxBytes bound the stream (defaults 7 days, 1 GiB).
	MaxAge   time.Duration
	MaxBytes int64
	// Replication is the stream's replicas and placement.
	Replication bus.Replication
	// Registry, when set, receives glasscast_events_published_total.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// NewPublisher creates or updates the events stream and returns a publisher.
func NewPublisher(ctx context.Context, js jetstream.JetStream, cfg PublisherConfig) (*Publisher, error) {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := cfg.Replication.CreateOrUpdateStream(ctx, js, StreamConfig(cfg.MaxAge, cfg.MaxBytes)); err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	p := &Publisher{env: cfg.Envelope, js: js, log: cfg.Logger,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glasscast_events_published_total",
			Help: "IVS events published to the events stream, by detail-type."}, []string{"detail_type"})}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(p.published); err != nil {
			return nil, fmt.Errorf("register events metrics: %w", err)
		}
	}
	return p, nil
}

// Publish stores ev in the stream. A publish whose acknowledgement is lost is retried with the
// same message id, which the stream's duplicate window stores once.
func (p *Publisher) Publish(ctx context.Context, ev Event) error {
	if Kind(ev.DetailType) == "" {
		return fmt.Errorf("unknown detail-type %q", ev.DetailType)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	msg := &nats.Msg{Subject: Subject(ev), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = p.js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			p.published.WithLabelValues(ev.DetailType).Inc()
			return nil
		}
		if attempt == 3 || ctx.Err() != nil {
			return fmt.Errorf("publish %s event: %w", ev.DetailType, err)
		}
		select {
		case <-time.After(delay):
			delay *= 4
		case <-ctx.Done():
			return fmt.Errorf("publish %s event: %w", ev.DetailType, errors.Join(err, ctx.Err()))
		}
	}
}

// emit builds and publishes, logging what fails: state changes must never stop a broadcast.
func (p *Publisher) emit(ctx context.Context, build func() (Event, error)) {
	ev, err := build()
	if err == nil {
		err = p.Publish(ctx, ev)
	}
	if err != nil {
		p.log.Warn("event not published", "err", err)
	}
}

// StreamEvent publishes a stream state or health change.
func (p *Publisher) StreamEvent(ctx context.Context, c StreamChange) {
	p.emit(ctx, func() (Event, error) { return p.env.Stream(c) })
}

// RecordingEvent publishes a recording state change.
func (p *Publisher) RecordingEvent(ctx context.Context, c RecordingChange) {
	p.emit(ctx, func() (Event, error) { return p.env.Recording(c) })
}

// LimitEvent publishes a limit breach.
func (p *Publisher) LimitEvent(ctx context.Context, c LimitChange) {
	p.emit(ctx, func() (Event, error) { return p.env.Limit(c) })
}

// StreamEvents hears a broadcast's state and health changes; the ingest calls it at the same
// points where it writes the stream session's history.
type StreamEvents interface {
	StreamEvent(ctx context.Context, c StreamChange)
}

// LimitEvents hears limit breaches.
type LimitEvents interface {
	LimitEvent(ctx context.Context, c LimitChange)
}
