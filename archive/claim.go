package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// claimTTL is how long a claim outlives its holder's last heartbeat.
const claimTTL = 30 * time.Second

// claims makes sure one archive records a channel when several run in a cluster: a recording
// starts only under a key-value claim on its channel, refreshed while it may still grow.
type claims struct {
	kv   jetstream.KeyValue
	node string
}

func openClaims(ctx context.Context, js jetstream.JetStream, repl bus.Replication, node string) (*claims, error) {
	kv, err := repl.CreateOrUpdateKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: "glasscast_archive_claims", History: 1, Storage: jetstream.FileStorage, TTL: claimTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("archive claims bucket: %w", err)
	}
	return &claims{kv: kv, node: node}, nil
}

// take claims channelID for this node. It succeeds when nobody holds it or this node already
// does (a restarted process keeps its recordings).
func (c *claims) take(ctx context.Context, channelID string) (bool, error) {
	if c == nil {
		return true, nil
	}
	_, err := c.kv.Create(ctx, channelID, []byte(c.node))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("claim %s: %w", channelID, err)
	}
	e, err := c.kv.Get(ctx, channelID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c.take(ctx, channelID)
	}
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", channelID, err)
	}
	if string(e.Value()) != c.node {
		return false, nil
	}
	_, err = c.kv.Update(ctx, channelID, []byte(c.node), e.Revision())
	return err == nil, nil
}

// refresh renews a claim this node holds.
func (c *claims) refresh(ctx context.Context, channelID string) error {
	if c == nil {
		return nil
	}
	_, err := c.kv.Put(ctx, channelID, []byte(c.node))
	return err
}

// release gives a claim up if this node holds it.
func (c *claims) release(ctx context.Context, channelID string) {
	if c == nil {
		return
	}
	if e, err := c.kv.Get(ctx, channelID); err == nil && string(e.Value()) == c.node {
		_ = c.kv.Delete(ctx, channelID, jetstream.LastRevision(e.Revision()))
	}
}
