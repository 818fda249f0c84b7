package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WebhookState is how far delivery to one webhook has got, from its durable consumer.
type WebhookState struct {
	URL         string     `json:"url"`
	DetailTypes []string   `json:"detailTypes,omitempty"`
	Channels    []string   `json:"channels,omitempty"`
	Delivered   uint64     `json:"delivered"`   // events handed to the webhook (acknowledged or not)
	Pending     uint64     `json:"pending"`     // events not yet handed over
	Unacked     int        `json:"unacked"`     // handed over, not yet answered with 2xx
	Redelivered int        `json:"redelivered"` // of those, being retried
	LastSent    *time.Time `json:"lastSent,omitempty"`
	// State is "delivering", "retrying" (an event is being redelivered), "idle", or "not started"
	// (no consumer yet: the monitoring role has not run).
	State string `json:"state"`
}

// WebhookStates reads the delivery state of each webhook.
func WebhookStates(ctx context.Context, js jetstream.JetStream, hooks []Webhook) ([]WebhookState, error) {
	out := make([]WebhookState, 0, len(hooks))
	for _, w := range hooks {
		st := WebhookState{URL: w.URL, DetailTypes: w.DetailTypes, Channels: w.Channels, State: "not started"}
		c, err := js.Consumer(ctx, StreamName, w.durable())
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				out = append(out, st)
				continue
			}
			return nil, fmt.Errorf("webhook %s: %w", w.URL, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", w.URL, err)
		}
		st.Delivered, st.Pending = info.Delivered.Consumer, info.NumPending
		st.Unacked, st.Redelivered = info.NumAckPending, info.NumRedelivered
		st.LastSent = info.Delivered.Last
		switch {
		case st.Redelivered > 0:
			st.State = "retrying"
		case st.Pending > 0 || st.Unacked > 0:
			st.State = "delivering"
		default:
			st.State = "idle"
		}
		out = append(out, st)
	}
	return out, nil
}
