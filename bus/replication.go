package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Replication says how many copies of each JetStream stream and key-value bucket a cluster
// keeps and on which servers. Every stream Glasscast creates goes through it, so that no state
// lives on one server only.
type Replication struct {
	// Replicas is the number of copies (1 to 5; 0 means 1). A cluster of three keeps working
	// with one server down only at 3.
	Replicas int
	// Tags restrict placement to servers carrying all of them (nats-server server_tags, e.g.
	// "region:a").
	Tags []string
}

// ParseReplication reads the nats.replicas and nats.placementTags options.
func ParseReplication(replicas int, tags string) (Replication, error) {
	if replicas < 0 || replicas > 5 {
		return Replication{}, fmt.Errorf("nats replicas %d must be between 1 and 5", replicas)
	}
	r := Replication{Replicas: max(replicas, 1)}
	for t := range strings.SplitSeq(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			r.Tags = append(r.Tags, t)
		}
	}
	return r, nil
}

func (r Replication) placement() *jetstream.Placement {
	if len(r.Tags) == 0 {
		return nil
	}
	return &jetstream.Placement{Tags: slices.Clone(r.Tags)}
}

// CreateOrUpdateStream creates cfg's stream with r's replicas and placement, or updates it in
// place. It never lowers the replicas of an existing stream, nor drops its placement: a process
// started without the options must not quietly undo another's replication.
func (r Replication) CreateOrUpdateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := r.apply(ctx, js, cfg.Name, &cfg.Replicas, &cfg.Placement); err != nil {
		return nil, err
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

// CreateOrUpdateKeyValue is CreateOrUpdateStream for a key-value bucket.
func (r Replication) CreateOrUpdateKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if err := r.apply(ctx, js, "KV_"+cfg.Bucket, &cfg.Replicas, &cfg.Placement); err != nil {
		return nil, err
	}
	return js.CreateOrUpdateKeyValue(ctx, cfg)
}

// apply sets the replicas and placement that stream name is to be created or updated with.
func (r Replication) apply(ctx context.Context, js jetstream.JetStream, name string, replicas *int, placement **jetstream.Placement) error {
	*replicas, *placement = max(r.Replicas, 1), r.placement()
	cur, err := r.existing(ctx, js, name)
	if err != nil {
		return err
	}
	if cur != nil {
		*replicas = max(*replicas, cur.Replicas)
		if *placement == nil {
			*placement = cur.Placement
		}
	}
	return nil
}

// existing returns the configuration of stream name, or nil when there is none.
func (r Replication) existing(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	return &cfg, nil
}
