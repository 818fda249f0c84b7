package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// How long a JetStream request is retried through a failover. A replicated stream whose leader
// dies elects another within raft's election timeout (4 to 9 s in nats-server); the client may
// also be moving to another server. Each attempt is cut short so that a request sent to a
// leader that just died is repeated instead of waited on for the default 5 s.
const (
	RetryFor       = 20 * time.Second
	AttemptTimeout = 2 * time.Second
)

// Transient reports whether err may go away by itself within seconds: no server answered, the
// request timed out, the client is between servers, or JetStream said it is temporarily
// unavailable (a stream or the cluster without a leader).
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrConsumerLeadershipChanged):
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		// 503: "JetStream system temporarily unavailable", no leader, cluster not ready;
		// 408: the request timed out inside the cluster.
		return api.Code == 503 || api.Code == 408
	}
	return false
}

// Retry runs fn until it succeeds, fails for good (not Transient), ctx ends or RetryFor has
// passed, giving each attempt AttemptTimeout. It returns fn's last error. fn must be safe to
// repeat: a write that timed out may have been stored, and the caller must recognise its own
// write on the next attempt.
func Retry(ctx context.Context, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(RetryFor)
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		err := fn(actx)
		cancel()
		if err == nil || !Transient(err) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
