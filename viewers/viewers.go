// Package viewers counts concurrent viewers: each edge tracks the viewer sessions it served in
// a sliding window and publishes them over NATS; counters anywhere (the API, metrics) take the
// union across edges, so a viewer who moves between edges is counted once.
package viewers

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

const subject = "glasscast.viewers"

// Window is how long a session counts after its last request. Players reload playlists every
// part or segment, so an active viewer is never silent this long.
const Window = 10 * time.Second

// Tracker records sessions seen by one edge.
type Tracker struct {
	mu       sync.Mutex
	channels map[string]map[uint64]time.Time
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{channels: map[string]map[uint64]time.Time{}} }

// Seen records a request of session on channel at now.
func (t *Tracker) Seen(channel string, session uint64, now time.Time) {
	t.mu.Lock()
	m := t.channels[channel]
	if m == nil {
		m = map[uint64]time.Time{}
		t.channels[channel] = m
	}
	m[session] = now
	t.mu.Unlock()
}

// Snapshot drops sessions older than the window and returns the rest per channel.
func (t *Tracker) Snapshot(now time.Time) map[string][]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string][]uint64, len(t.channels))
	for ch, m := range t.channels {
		for s, last := range m {
			if now.Sub(last) > Window {
				delete(m, s)
			}
		}
		if len(m) == 0 {
			delete(t.channels, ch)
			continue
		}
		ids := make([]uint64, 0, len(m))
		for s := range m {
			ids = append(ids, s)
		}
		out[ch] = ids
	}
	return out
}

type report struct {
	Edge     string              `json:"edge"`
	Channels map[string][]uint64 `json:"channels"`
}

// Publish sends t's sessions every interval until ctx ends.
func Publish(ctx context.Context, nc *nats.Conn, edge string, t *Tracker, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			b, err := json.Marshal(report{Edge: edge, Channels: t.Snapshot(now)})
			if err == nil {
				err = nc.Publish(subject, b)
			}
			if err != nil {
				log.Warn("publish viewer sessions", "err", err)
			}
		}
	}
}

// Counter unions the sessions edges report.
type Counter struct {
	mu     sync.Mutex
	edges  map[string]edgeReport
	counts map[string]int64
	maxAge time.Duration
}

type edgeReport struct {
	at       time.Time
	channels map[string][]uint64
}

// Count subscribes to edge reports until ctx ends. Reports older than maxAge (an edge that
// stopped) no longer count.
func Count(ctx context.Context, nc *nats.Conn, maxAge time.Duration) (*Counter, error) {
	c := &Counter{edges: map[string]edgeReport{}, counts: map[string]int64{}, maxAge: maxAge}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var r report
		if json.Unmarshal(m.Data, &r) != nil || r.Edge == "" {
			return
		}
		c.mu.Lock()
		c.edges[r.Edge] = edgeReport{at: time.Now(), channels: r.Channels}
		c.recount(time.Now())
		c.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return c, nil
}

func (c *Counter) recount(now time.Time) {
	union := map[string]map[uint64]struct{}{}
	for name, r := range c.edges {
		if now.Sub(r.at) > c.maxAge {
			delete(c.edges, name)
			continue
		}
		for ch, ids := range r.channels {
			u := union[ch]
			if u == nil {
				u = map[uint64]struct{}{}
				union[ch] = u
			}
			for _, id := range ids {
				u[id] = struct{}{}
			}
		}
	}
	c.counts = make(map[string]int64, len(union))
	for ch, u := range union {
		c.counts[ch] = int64(len(u))
	}
}

// Viewers returns the channel's current viewer count across edges.
func (c *Counter) Viewers(channel string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, r := range c.edges {
		if now.Sub(r.at) > c.maxAge {
			c.recount(now)
			break
		}
	}
	return c.counts[channel]
}

// All returns every channel's count.
func (c *Counter) All() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recount(time.Now())
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}
