package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TailConfig says what `glasscast events tail` follows.
type TailConfig struct {
	DetailTypes []string // empty: all
	Channels    []string // empty: all
	// Since replays the events of this long ago before following new ones (0: new only).
	Since time.Duration
	// Count stops after this many events (0: until ctx ends).
	Count int
}

// Tail writes each event envelope as one line of JSON to out, following the stream until ctx
// ends. It reads through an ordered consumer, which leaves no state behind on the server.
func Tail(ctx context.Context, js jetstream.JetStream, cfg TailConfig, out io.Writer) error {
	w := Webhook{DetailTypes: cfg.DetailTypes, Channels: cfg.Channels}
	oc := jetstream.OrderedConsumerConfig{FilterSubjects: w.filterSubjects(), DeliverPolicy: jetstream.DeliverNewPolicy}
	if cfg.Since > 0 {
		start := time.Now().Add(-cfg.Since)
		oc.DeliverPolicy, oc.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := js.OrderedConsumer(ctx, StreamName, oc)
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	n := 0
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if !sleep(ctx, 200*time.Millisecond) {
				break
			}
			continue
		}
		if _, err := fmt.Fprintf(out, "%s\n", msg.Data()); err != nil {
			return err
		}
		n++
		if cfg.Count > 0 && n >= cfg.Count {
			return nil
		}
	}
	return nil
}
