package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// ErrSuperseded is returned, wrapped, by a Broadcast after another stream took its channel
// over at the sink. Retrying will not help, and reopening would take the channel back from the
// newer stream, so a Tee gives such a sink up.
var ErrSuperseded = errors.New("broadcast superseded")

// TeeConfig configures a Tee. The zero value is usable.
type TeeConfig struct {
	// QueueBytes bounds the part and init bytes waiting for one sink. A sink that falls this
	// far behind loses what is queued and is re-synchronised at the next segment boundary, so
	// that it never holds the others (or the packager) back. Default 16 MiB.
	QueueBytes int64
	// RetryMin and RetryMax bound the backoff between attempts to reach a sink that failed;
	// it doubles from RetryMin up to RetryMax and is retried for the whole broadcast.
	// Defaults 250 ms and 5 s.
	RetryMin, RetryMax time.Duration
	// Logger receives sink failures and recoveries. Default: discard.
	Logger *slog.Logger
}

// TeeSink is one destination of a Tee and the name its state is reported under (an URL).
type TeeSink struct {
	Name string
	Sink Sink
}

// SinkState says whether a sink holds the broadcast as it is made.
type SinkState string

// Sink states.
const (
	// SinkInSync: the sink receives every object as it is made.
	SinkInSync SinkState = "in-sync"
	// SinkCatchingUp: the sink is reachable again (or fell behind) and waits for the next
	// segment boundary, or works through a backlog.
	SinkCatchingUp SinkState = "catching-up"
	// SinkDown: the last attempt to reach the sink failed; it is retried with backoff.
	SinkDown SinkState = "down"
)

// SinkStatus is one sink's state in a broadcast and since when it holds.
type SinkStatus struct {
	Name  string
	State SinkState
	Since time.Time
}

// SinkReporter is implemented by the Broadcast a Tee returns, for those that record where a
// broadcast is delivered (the ingest's live registration).
type SinkReporter interface {
	// SinkStatus lists each sink's state, in the Tee's order.
	SinkStatus() []SinkStatus
	// SinkChanged returns a channel closed at the next change of state.
	SinkChanged() <-chan struct{}
}

// Tee is a Sink that writes every broadcast to several sinks: an ingest feeding two origins, so
// that an edge can fail over between them. Each sink has its own bounded queue and sender, so
// a slow or lost sink never delays another: Init and Part return once the object is queued. A
// sink that fails is retried with backoff for the whole broadcast and re-synchronised in the
// middle of it: the broadcast is reopened (same StreamID, so the sink resumes it), the current
// init segments are sent again, and parts continue from the next segment boundary with their
// names unchanged; the sink holds a gap where it missed parts.
type Tee struct {
	cfg   TeeConfig
	sinks []TeeSink
	log   *slog.Logger
}

const (
	defaultQueueBytes = 16 << 20
	defaultRetryMin   = 250 * time.Millisecond
	defaultRetryMax   = 5 * time.Second
)

// NewTee returns a Tee over sinks.
func NewTee(cfg TeeConfig, sinks ...TeeSink) *Tee {
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = defaultQueueBytes
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = defaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(defaultRetryMax, cfg.RetryMin)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Tee{cfg: cfg, sinks: sinks, log: log}
}

// Open opens the broadcast on every sink at once and returns when one of them accepted it
// (the others keep trying in the background) or all of them failed.
func (t *Tee) Open(ctx context.Context, s Stream) (Broadcast, error) {
	if len(t.sinks) == 0 {
		return nil, errors.New("tee without sinks")
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	tb := &teeBroadcast{t: t, stream: s, cancel: cancel, inits: make(map[string]teeInit), changed: make(chan struct{})}
	results := make(chan error, len(t.sinks))
	now := time.Now()
	for _, sk := range t.sinks {
		q := &sinkQueue{tb: tb, name: sk.Name, sink: sk.Sink, wake: make(chan struct{}, 1), done: make(chan struct{}),
			state: SinkCatchingUp, since: now}
		tb.queues = append(tb.queues, q)
	}
	for _, q := range tb.queues {
		go q.run(run, results)
	}
	var errs []error
	for range t.sinks {
		select {
		case err := <-results:
			if err == nil {
				return tb, nil
			}
			errs = append(errs, err)
		case <-ctx.Done():
			cancel()
			return nil, ctx.Err()
		}
	}
	cancel()
	return nil, fmt.Errorf("no sink accepted the broadcast: %w", errors.Join(errs...))
}

// teeInit is the latest init segment of a rendition, sent again to a sink that resumes.
type teeInit struct {
	r    Rendition
	data []byte
}

type teeBroadcast struct {
	t      *Tee
	stream Stream
	queues []*sinkQueue
	cancel context.CancelFunc

	mu      sync.Mutex
	inits   map[string]teeInit
	order   []string // renditions in Init order
	changed chan struct{}
}

// Init implements Broadcast: it queues the init segment for every sink.
func (tb *teeBroadcast) Init(ctx context.Context, r Rendition, init []byte) error {
	tb.mu.Lock()
	if _, ok := tb.inits[r.Name]; !ok {
		tb.order = append(tb.order, r.Name)
	}
	tb.inits[r.Name] = teeInit{r: r, data: init}
	tb.mu.Unlock()
	return tb.each(teeItem{op: opInit, rendition: r.Name, r: r, data: init})
}

// Part implements Broadcast: it queues the part for every sink.
func (tb *teeBroadcast) Part(ctx context.Context, rendition string, p Part) error {
	return tb.each(teeItem{op: opPart, rendition: rendition, part: p, data: p.Data})
}

func (tb *teeBroadcast) each(it teeItem) error {
	alive := 0
	for _, q := range tb.queues {
		if q.push(it) {
			alive++
		}
	}
	if alive == 0 {
		return fmt.Errorf("every sink gave the broadcast up: %w", ErrSuperseded)
	}
	return nil
}

// Close implements Broadcast: each sink gets what is queued for it, then Close. It waits for
// the senders until ctx ends; a sink still unreachable then is left to end the broadcast on
// its own (origins end a broadcast whose pushes stopped and whose registration is gone).
func (tb *teeBroadcast) Close(ctx context.Context) error {
	for _, q := range tb.queues {
		q.push(teeItem{op: opClose})
	}
	var errs []error
	for _, q := range tb.queues {
		select {
		case <-q.done:
			if err := q.closeErr; err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", q.name, err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s: %w", q.name, ctx.Err()))
		}
	}
	tb.cancel()
	return errors.Join(errs...)
}

// SinkStatus implements SinkReporter.
func (tb *teeBroadcast) SinkStatus() []SinkStatus {
	out := make([]SinkStatus, len(tb.queues))
	for i, q := range tb.queues {
		q.mu.Lock()
		out[i] = SinkStatus{Name: q.name, State: q.state, Since: q.since}
		q.mu.Unlock()
	}
	return out
}

// SinkChanged implements SinkReporter.
func (tb *teeBroadcast) SinkChanged() <-chan struct{} {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.changed
}

func (tb *teeBroadcast) notify() {
	tb.mu.Lock()
	close(tb.changed)
	tb.changed = make(chan struct{})
	tb.mu.Unlock()
}

// currentInits returns the latest init segment of every rendition, in Init order.
func (tb *teeBroadcast) currentInits() []teeInit {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	out := make([]teeInit, 0, len(tb.order))
	for _, name := range tb.order {
		out = append(out, tb.inits[name])
	}
	return out
}
