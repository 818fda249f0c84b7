package edge

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// breakerState is a circuit breaker's state.
type breakerState int

const (
	closed   breakerState = iota // requests go to the upstream
	open                         // it failed: requests skip it while a prober knocks
	halfOpen                     // a probe answered: requests may try it again
)

func (s breakerState) String() string { return [...]string{"closed", "open", "half-open"}[s] }

// Breaker remembers that an upstream failed, so that a dead origin costs one failed dial per
// probe interval instead of one per request (every request trying the dead upstream first
// stalls it and floods the log). A failure opens it; while open, one background prober retries
// the upstream with exponential backoff; the first answer makes it half-open, and the next
// request that succeeds closes it (one that fails opens it again).
type Breaker struct {
	name  string
	probe func(context.Context) error
	// First and Max bound the prober's backoff.
	first, max time.Duration
	forget     time.Duration // forgetAfter; shorter in tests
	log        *slog.Logger

	mu      sync.Mutex
	state   breakerState
	probing bool
	wanted  time.Time // last time a request asked for the upstream
}

// forgetAfter ends probing of an upstream no request asked for in that long (an origin whose
// broadcasts ended): the breaker goes half-open, so the next request that wants it tries it
// once and probing restarts only if it fails again.
const forgetAfter = time.Minute

// NewBreaker returns a closed breaker for the upstream name. probe checks it is back; it runs
// only while the breaker is open.
func NewBreaker(name string, probe func(context.Context) error, first, max time.Duration, log *slog.Logger) *Breaker {
	return &Breaker{name: name, probe: probe, first: first, max: max, forget: forgetAfter, log: log}
}

// Allow reports whether requests should try the upstream now.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wanted = time.Now()
	return b.state != open
}

// State is the breaker's state, for logs and tests.
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.String()
}

// Success records an answer from the upstream.
func (b *Breaker) Success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != closed {
		b.log.Info("upstream back", "upstream", b.name)
		b.state = closed
	}
}

// Failure records a failed request and, when it opens the breaker, starts probing under ctx.
// It reports whether this failure opened it (so the caller logs once per outage, not once per
// request).
func (b *Breaker) Failure(ctx context.Context, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	opened := b.state != open
	b.state = open
	b.wanted = time.Now()
	if opened {
		b.log.Warn("upstream failed; skipping it until a probe answers", "upstream", b.name, "err", err)
	}
	if !b.probing {
		b.probing = true
		go b.probeLoop(ctx)
	}
	return opened
}

// probeLoop retries the upstream with backoff until it answers (half-open) or ctx ends.
func (b *Breaker) probeLoop(ctx context.Context) {
	wait := b.first
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, max(b.first, time.Second))
		err := b.probe(pctx)
		cancel()
		b.mu.Lock()
		if b.state != open { // a last-resort request got through meanwhile
			b.probing = false
			b.mu.Unlock()
			return
		}
		if err != nil && time.Since(b.wanted) > b.forget {
			b.state, b.probing = halfOpen, false
			b.mu.Unlock()
			return
		}
		if err == nil {
			b.state = halfOpen
			b.probing = false
			b.mu.Unlock()
			b.log.Info("upstream answers a probe; trying it again", "upstream", b.name)
			return
		}
		b.mu.Unlock()
		wait = min(2*wait, b.max)
		t.Reset(wait)
	}
}
