package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// Room is an IVS Chat room as stored; its ARN is derived from ID by the API.
type Room struct {
	ID                          string               `json:"id"`
	Name                        string               `json:"name"`
	MaximumMessageRatePerSecond int                  `json:"maximumMessageRatePerSecond"`
	MaximumMessageLength        int                  `json:"maximumMessageLength"`
	MessageReviewHandler        *MessageReviewConfig `json:"messageReviewHandler,omitempty"`
	// LoggingConfigurations are logging configuration IDs (not ARNs).
	LoggingConfigurations []string          `json:"loggingConfigurations,omitempty"`
	Tags                  map[string]string `json:"tags,omitempty"`
	CreatedAt             time.Time         `json:"createdAt"`
	UpdatedAt             time.Time         `json:"updatedAt"`
}

// MessageReviewConfig is a room's messageReviewHandler.
type MessageReviewConfig struct {
	URI            string `json:"uri"`
	FallbackResult string `json:"fallbackResult"`
}

// ChatLoggingConfiguration is an IVS Chat logging configuration. Exactly one destination is set.
type ChatLoggingConfiguration struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	S3Bucket           string            `json:"s3Bucket,omitempty"`
	LogGroupName       string            `json:"logGroupName,omitempty"`
	DeliveryStreamName string            `json:"deliveryStreamName,omitempty"`
	State              string            `json:"state"`
	Tags               map[string]string `json:"tags,omitempty"`
	CreatedAt          time.Time         `json:"createdAt"`
	UpdatedAt          time.Time         `json:"updatedAt"`
}

// ChatTokenTTL bounds how long a chat token can be presented; claims of used tokens are kept
// that long, after which the token is refused as expired anyway.
const ChatTokenTTL = time.Hour

// ClaimSet records one-time claims (used chat tokens) in a key-value bucket. It is not a Table:
// nobody lists claims, so replicating them into every process would only cost memory.
type ClaimSet struct{ kv jetstream.KeyValue }

// Claim records key as used. It returns ErrExists when any process claimed it before, which is
// what makes a chat token single-use across the whole deployment: a KV create is atomic.
func (c *ClaimSet) Claim(ctx context.Context, key string) error {
	// A random value tells our own claim, stored by an attempt whose answer a failover lost,
	// from another process's.
	mine := make([]byte, 16)
	_, _ = rand.Read(mine) // crypto/rand.Read never fails on supported platforms
	ambiguous := false
	err := bus.Retry(ctx, func(ctx context.Context) error {
		_, err := c.kv.Create(ctx, key, mine)
		ambiguous = ambiguous || bus.Transient(err)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyExists) && ambiguous {
		if e, gerr := c.kv.Get(ctx, key); gerr == nil && bytes.Equal(e.Value(), mine) {
			return nil
		}
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("claim: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	return nil
}

// ChatTokenKey returns the deployment's 256-bit key that seals chat tokens, creating it on first
// use. Every control and edge process reads the same key, so any edge opens any API's token.
func (s *Store) ChatTokenKey(ctx context.Context) ([]byte, error) {
	v, err := s.Secret(ctx, "chat-token-key-1", func() string {
		key := make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails on supported platforms
		return base64.StdEncoding.EncodeToString(key)
	})
	if err != nil {
		return nil, fmt.Errorf("chat token key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("chat token key is damaged")
	}
	return key, nil
}

// openChat opens the IVS Chat buckets.
func (s *Store) openChat(ctx context.Context, js jetstream.JetStream, repl bus.Replication) error {
	durable := func(name string) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{Bucket: name, History: 1, Storage: jetstream.FileStorage}
	}
	var err error
	if s.Rooms, err = openTable[Room](ctx, js, repl, durable("glasscast_chat_rooms")); err != nil {
		return err
	}
	if s.ChatLogging, err = openTable[ChatLoggingConfiguration](ctx, js, repl, durable("glasscast_chat_logging")); err != nil {
		return err
	}
	claims := durable("glasscast_chat_token_claims")
	claims.TTL = ChatTokenTTL + time.Minute // past a token's life its claim is moot
	kv, err := repl.CreateOrUpdateKeyValue(ctx, js, claims)
	if err != nil {
		return fmt.Errorf("key-value bucket %s: %w", claims.Bucket, err)
	}
	s.ChatTokens = &ClaimSet{kv: kv}
	return nil
}
