// Package ingestctl carries the control API's requests to whichever ingest holds a channel's
// publisher, over NATS: stop the stream, insert timed metadata or an ad break. The ingest answers on a
// subject per channel, so a request reaches exactly the node that owns the broadcast.
package ingestctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Errors of a request; they travel over NATS by name.
var (
	ErrNotBroadcasting = errors.New("channel is not broadcasting")
	ErrThrottled       = errors.New("too many requests")
	ErrUnavailable     = errors.New("ingest unavailable")
	// ErrAdBreakRunning refuses an ad break while another one is still on air.
	ErrAdBreakRunning = errors.New("an ad break is already running")
)

const (
	subjectStop     = "glasscast.ingest.stop."
	subjectMetadata = "glasscast.ingest.metadata."
	subjectAdBreak  = "glasscast.ingest.adbreak."
)

// AdBreak is an InsertAdBreak request.
type AdBreak struct {
	ID       string        `json:"id"`
	Duration time.Duration `json:"duration"`
}

type reply struct {
	Error string `json:"error,omitempty"`
}

var wireErrors = map[string]error{"not_broadcasting": ErrNotBroadcasting, "throttled": ErrThrottled, "ad_break_running": ErrAdBreakRunning}

// Client sends requests; the control API uses it.
type Client struct {
	NC *nats.Conn
	// Timeout bounds a request when ctx has no earlier deadline (default 5 s).
	Timeout time.Duration
}

// Stop disconnects a channel's publisher.
func (c *Client) Stop(ctx context.Context, channelID string) error {
	return c.request(ctx, subjectStop+channelID, nil)
}

// PutMetadata inserts timed metadata into a channel's stream.
func (c *Client) PutMetadata(ctx context.Context, channelID, metadata string) error {
	return c.request(ctx, subjectMetadata+channelID, []byte(metadata))
}

// InsertAdBreak starts an ad break in a channel's stream at its next segment boundary.
func (c *Client) InsertAdBreak(ctx context.Context, channelID string, ab AdBreak) error {
	b, err := json.Marshal(ab)
	if err != nil {
		return err
	}
	return c.request(ctx, subjectAdBreak+channelID, b)
}

func (c *Client) request(ctx context.Context, subject string, data []byte) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.NC.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return ErrNotBroadcasting
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%s: %w", subject, ErrUnavailable)
	case err != nil:
		return fmt.Errorf("%s: %w", subject, err)
	}
	var r reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return fmt.Errorf("%s: bad reply: %w", subject, err)
	}
	if r.Error == "" {
		return nil
	}
	if e, ok := wireErrors[r.Error]; ok {
		return e
	}
	return fmt.Errorf("%s: %s", subject, r.Error)
}

// Handler is what an ingest does with requests for one channel it holds.
type Handler interface {
	Stop(ctx context.Context) error
	PutMetadata(ctx context.Context, metadata string) error
	InsertAdBreak(ctx context.Context, ab AdBreak) error
}

// Subscription answers one channel's requests until Close.
type Subscription struct{ subs []*nats.Subscription }

// Serve answers requests for channelID with h. The ingest calls it when a broadcast starts
// and closes the subscription when it ends.
func Serve(nc *nats.Conn, channelID string, h Handler) (*Subscription, error) {
	s := &Subscription{}
	handle := func(fn func(ctx context.Context, data []byte) error) nats.MsgHandler {
		return func(m *nats.Msg) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var r reply
			if err := fn(ctx, m.Data); err != nil {
				r.Error = err.Error()
				for name, e := range wireErrors {
					if errors.Is(err, e) {
						r.Error = name
					}
				}
			}
			b, _ := json.Marshal(r)
			_ = m.Respond(b)
		}
	}
	for subject, fn := range map[string]func(context.Context, []byte) error{
		subjectStop + channelID:     func(ctx context.Context, _ []byte) error { return h.Stop(ctx) },
		subjectMetadata + channelID: func(ctx context.Context, d []byte) error { return h.PutMetadata(ctx, string(d)) },
		subjectAdBreak + channelID: func(ctx context.Context, d []byte) error {
			var ab AdBreak
			if err := json.Unmarshal(d, &ab); err != nil {
				return fmt.Errorf("ad break request: %w", err)
			}
			return h.InsertAdBreak(ctx, ab)
		},
	} {
		sub, err := nc.Subscribe(subject, handle(fn))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("subscribe %s: %w", subject, err)
		}
		s.subs = append(s.subs, sub)
	}
	// Make sure the server knows the subscriptions before the stream is announced live.
	if err := nc.Flush(); err != nil {
		s.Close()
		return nil, fmt.Errorf("flush subscriptions: %w", err)
	}
	return s, nil
}

// Close stops answering.
func (s *Subscription) Close() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}
