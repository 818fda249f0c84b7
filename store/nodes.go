package store

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Node is one process's entry in the node registry: where it is (region, zone), what it runs,
// how to reach it and how busy it is. Edges order origins by it and the playback director
// picks viewers' edges by it. Its owner refreshes it every NodeTTL/3; the bucket expires it
// when that stops, so a dead node drops out within NodeTTL.
type Node struct {
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
	Region string   `json:"region"`
	Zone   string   `json:"zone,omitempty"`
	// OriginURL is the base URL edges fill from, when the node runs a listening origin.
	OriginURL string `json:"originUrl,omitempty"`
	// EdgeURL is the base URL viewers are sent to, when the node runs an edge.
	EdgeURL string `json:"edgeUrl,omitempty"`
	// Load is the edge's current load: viewer sessions plus requests in flight.
	Load      int64     `json:"load"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// NodeTTL is how long a registry entry survives without a heartbeat. Readers also treat an
// entry older than this as gone, whatever the bucket still holds.
const NodeTTL = 10 * time.Second

// Fresh reports whether the entry was refreshed within NodeTTL of now.
func (n Node) Fresh(now time.Time) bool { return now.Sub(n.UpdatedAt) < NodeTTL }

// nodesConfig turns the common bucket configuration into the registry's: entries expire, and
// watchers hear about expiry so every replica drops a dead node.
func nodesConfig(cfg jetstream.KeyValueConfig) jetstream.KeyValueConfig {
	cfg.TTL = NodeTTL
	cfg.LimitMarkerTTL = time.Minute
	return cfg
}

// Heartbeat keeps n in the registry under its name until ctx ends, refreshing it every
// NodeTTL/3 with load() (nil: 0), and removes it on the way out so a clean stop is seen at once.
func (s *Store) Heartbeat(ctx context.Context, n Node, load func() int64) error {
	put := func() error {
		if load != nil {
			n.Load = load()
		}
		n.UpdatedAt = time.Now()
		return s.Nodes.Put(ctx, n.Name, n)
	}
	if err := put(); err != nil {
		return err
	}
	t := time.NewTicker(NodeTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.Nodes.Delete(dctx, n.Name)
			cancel()
			return nil
		case <-t.C:
			_ = put() // a missed beat is retried at the next tick; the TTL covers two misses
		}
	}
}
