// Package store keeps Glasscast's resources (channels, stream keys, playback key pairs,
// recording configurations) and live state (streams on air, stream sessions) in NATS JetStream
// key-value buckets, replicated into each process's memory for reads.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// Channel is an IVS channel as stored; ARNs and URLs are derived from ID by the API.
type Channel struct {
	ID                           string            `json:"id"`
	Name                         string            `json:"name"`
	LatencyMode                  string            `json:"latencyMode"`
	Type                         string            `json:"type"`
	Authorized                   bool              `json:"authorized"`
	InsecureIngest               bool              `json:"insecureIngest"`
	Preset                       string            `json:"preset,omitempty"`
	RecordingConfigurationArn    string            `json:"recordingConfigurationArn,omitempty"`
	AdConfigurationArn           string            `json:"adConfigurationArn,omitempty"`
	PlaybackRestrictionPolicyArn string            `json:"playbackRestrictionPolicyArn,omitempty"`
	ContainerFormat              string            `json:"containerFormat,omitempty"`
	Multitrack                   *Multitrack       `json:"multitrack,omitempty"`
	Tags                         map[string]string `json:"tags,omitempty"`
	// SRTPassphrase encrypts SRT ingest (AES); channels created before SRT have none until
	// they are updated.
	SRTPassphrase string `json:"srtPassphrase,omitempty"`
	// StreamKeys lists the channel's stream key IDs. Keeping them on the channel record makes
	// the per-channel quota check and the key's creation one compare-and-set.
	StreamKeys []string  `json:"streamKeys,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
}

// Multitrack is IVS's multitrackInputConfiguration, stored as given.
type Multitrack struct {
	Enabled           bool   `json:"enabled"`
	Policy            string `json:"policy,omitempty"`
	MaximumResolution string `json:"maximumResolution,omitempty"`
}

// StreamKey authorizes a publisher on one channel.
type StreamKey struct {
	ID        string            `json:"id"`
	ChannelID string            `json:"channelId"`
	Value     string            `json:"value"`
	Tags      map[string]string `json:"tags,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// PlaybackKeyPair is the public half of a key that signs playback tokens.
type PlaybackKeyPair struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	PublicKeyPEM string            `json:"publicKeyPem"`
	Fingerprint  string            `json:"fingerprint"`
	Tags         map[string]string `json:"tags,omitempty"`
	CreatedAt    time.Time         `json:"createdAt"`
}

// RecordingConfiguration says where and how a channel's broadcasts are recorded.
type RecordingConfiguration struct {
	ID                     string                  `json:"id"`
	Name                   string                  `json:"name"`
	BucketName             string                  `json:"bucketName"`
	State                  string                  `json:"state"`
	StateReason            string                  `json:"stateReason,omitempty"`
	Thumbnail              *ThumbnailConfiguration `json:"thumbnail,omitempty"`
	ReconnectWindowSeconds int                     `json:"reconnectWindowSeconds"`
	Rendition              *RenditionConfiguration `json:"rendition,omitempty"`
	Tags                   map[string]string       `json:"tags,omitempty"`
	CreatedAt              time.Time               `json:"createdAt"`
}

// ThumbnailConfiguration is IVS's thumbnailConfiguration with defaults applied.
type ThumbnailConfiguration struct {
	RecordingMode         string   `json:"recordingMode"`
	TargetIntervalSeconds int64    `json:"targetIntervalSeconds"`
	Resolution            string   `json:"resolution,omitempty"`
	Storage               []string `json:"storage"`
}

// RenditionConfiguration is IVS's renditionConfiguration with defaults applied.
type RenditionConfiguration struct {
	RenditionSelection string   `json:"renditionSelection"`
	Renditions         []string `json:"renditions,omitempty"`
}

// PlaybackRestrictionPolicy limits where a public channel plays: from which countries and
// which web origins. Empty lists allow everything, as IVS's defaults do.
type PlaybackRestrictionPolicy struct {
	ID                            string            `json:"id"`
	Name                          string            `json:"name"`
	AllowedCountries              []string          `json:"allowedCountries"`
	AllowedOrigins                []string          `json:"allowedOrigins"`
	EnableStrictOriginEnforcement bool              `json:"enableStrictOriginEnforcement"`
	Tags                          map[string]string `json:"tags,omitempty"`
	CreatedAt                     time.Time         `json:"createdAt"`
}

// RevocationTTL is how long a viewer-session revocation is kept: longer than any session a
// playback token can open (edges cap sessions of tokens with aws:viewer-id to it).
const RevocationTTL = 24 * time.Hour

// RevocationKey is the Revocations table key of a viewer of a channel; viewer IDs may hold
// characters KV keys may not, so the ID is hashed.
func RevocationKey(channelID, viewerID string) string {
	sum := sha256.Sum256([]byte(viewerID))
	return channelID + "." + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// Live is a channel's registration while it is on air. The ingest that owns the stream
// refreshes it every few seconds; the bucket expires it when that stops, so a crashed ingest
// leaves nothing LIVE.
type Live struct {
	ChannelID string    `json:"channelId"`
	StreamID  string    `json:"streamId"`
	StartTime time.Time `json:"startTime"`
	Health    string    `json:"health"`
	// Ingest names the node that holds the publisher; metadata and stop requests go to it.
	Ingest string `json:"ingest"`
	// Origins are base URLs of the origins holding the stream, for edges in other processes.
	Origins []string `json:"origins,omitempty"`
	// OriginStates says, for each origin the ingest pushes to over the network, whether it
	// holds the stream as it is made. Empty when the ingest writes to an in-process origin.
	OriginStates []OriginState `json:"originStates,omitempty"`
	// Playable is set once every rendition has a complete segment at the origin(s): the channel is
	// LIVE in the API (and Stream Start is sent) from then on, so a player started on that news
	// finds a playlist. The registration exists before, to claim the channel cluster-wide.
	Playable  bool      `json:"playable,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Origin states of a live registration.
const (
	OriginInSync     = "in-sync"     // receives every part as it is made
	OriginCatchingUp = "catching-up" // reachable again, or fell behind: joins at the next segment
	OriginDown       = "down"        // unreachable; the ingest keeps retrying
)

// OriginState is one origin's delivery state in a live registration.
type OriginState struct {
	URL   string    `json:"url"`
	State string    `json:"state"`
	Since time.Time `json:"since"`
}

// Session is the history of one broadcast, kept after it ends.
type Session struct {
	ChannelID string                  `json:"channelId"`
	StreamID  string                  `json:"streamId"`
	StartTime time.Time               `json:"startTime"`
	EndTime   *time.Time              `json:"endTime,omitempty"`
	Channel   Channel                 `json:"channel"`
	Ingest    *IngestConfig           `json:"ingest,omitempty"`
	Recording *RecordingConfiguration `json:"recording,omitempty"`
	Events    []SessionEvent          `json:"events"`
}

// IngestConfig describes what the publisher sends.
type IngestConfig struct {
	Video *VideoConfig `json:"video,omitempty"`
	Audio *AudioConfig `json:"audio,omitempty"`
}

// VideoConfig is the publisher's video as IVS reports it.
type VideoConfig struct {
	Codec           string `json:"codec"`
	Profile         string `json:"profile,omitempty"`
	Level           string `json:"level,omitempty"`
	Encoder         string `json:"encoder,omitempty"`
	TargetBitrate   int64  `json:"targetBitrate"`
	TargetFramerate int64  `json:"targetFramerate"`
	Width           int64  `json:"width"`
	Height          int64  `json:"height"`
}

// AudioConfig is the publisher's audio as IVS reports it.
type AudioConfig struct {
	Codec         string `json:"codec"`
	TargetBitrate int64  `json:"targetBitrate"`
	SampleRate    int64  `json:"sampleRate"`
	Channels      int64  `json:"channels"`
}

// SessionEvent is one entry of a session's history ("Session Created", "Stream Start", ...).
type SessionEvent struct {
	Name string    `json:"name"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Code string    `json:"code,omitempty"`
}

// MaxSessionEvents bounds a session's history, as IVS truncates it.
const MaxSessionEvents = 500

// LiveTTL is how long a live registration survives without a heartbeat.
const LiveTTL = 15 * time.Second

// Store is the set of tables every role shares.
type Store struct {
	Channels         *Table[Channel]
	StreamKeys       *Table[StreamKey]
	StreamKeyValues  *Table[string] // StreamKeyDigest(value) -> stream key ID, for the ingest's lookup
	PlaybackKeyPairs *Table[PlaybackKeyPair]
	RecordingConfigs *Table[RecordingConfiguration]
	// PlaybackPolicies holds playback restriction policies by ID.
	PlaybackPolicies *Table[PlaybackRestrictionPolicy]
	// Revocations holds, by RevocationKey, the highest viewer-session version revoked; entries
	// expire after RevocationTTL.
	Revocations *Table[int64]
	AdConfigs   *Table[AdConfiguration] // ads.go
	Live        *Table[Live]
	Sessions    *Table[Session] // key: <channel id>.<stream id>
	// TokenUses records single-use playback tokens already spent (value: their expiry).
	TokenUses *Table[int64]
	// Secrets holds values every node shares, such as the edges' token-derivation key.
	Secrets *Table[string]
	// IVS Chat (chat.go).
	Rooms       *Table[Room]
	ChatLogging *Table[ChatLoggingConfiguration]
	ChatTokens  *ClaimSet // chat tokens already used

	// Nodes is the node registry: regions, URLs and load of live nodes (nodes.go).
	Nodes *Table[Node]

	// Replication is how the buckets are replicated; the deployment's other streams (chat,
	// archive claims) are created with it too.
	Replication bus.Replication

	streamKeyMAC []byte // HMAC key of StreamKeyDigest, shared through Secrets
}

// Open creates or opens the buckets with repl's replicas and placement and loads them. Tables
// stay in sync until ctx ends.
func Open(ctx context.Context, js jetstream.JetStream, repl bus.Replication) (*Store, error) {
	s := &Store{Replication: repl}
	var err error
	durable := func(name string) jetstream.KeyValueConfig {
		return jetstream.KeyValueConfig{Bucket: name, History: 1, Storage: jetstream.FileStorage}
	}
	if s.Channels, err = openTable[Channel](ctx, js, repl, durable("glasscast_channels")); err != nil {
		return nil, err
	}
	if s.StreamKeys, err = openTable[StreamKey](ctx, js, repl, durable("glasscast_stream_keys")); err != nil {
		return nil, err
	}
	if s.StreamKeyValues, err = openTable[string](ctx, js, repl, durable("glasscast_stream_key_values")); err != nil {
		return nil, err
	}
	if s.PlaybackKeyPairs, err = openTable[PlaybackKeyPair](ctx, js, repl, durable("glasscast_playback_keys")); err != nil {
		return nil, err
	}
	if s.RecordingConfigs, err = openTable[RecordingConfiguration](ctx, js, repl, durable("glasscast_recording_configs")); err != nil {
		return nil, err
	}
	if s.PlaybackPolicies, err = openTable[PlaybackRestrictionPolicy](ctx, js, repl, durable("glasscast_playback_policies")); err != nil {
		return nil, err
	}
	revocations := durable("glasscast_revocations")
	revocations.TTL = RevocationTTL
	revocations.LimitMarkerTTL = time.Minute // edges forget expired revocations too
	if s.Revocations, err = openTable[int64](ctx, js, repl, revocations); err != nil {
		return nil, err
	}
	if s.AdConfigs, err = openTable[AdConfiguration](ctx, js, repl, durable("glasscast_ad_configs")); err != nil {
		return nil, err
	}
	live := jetstream.KeyValueConfig{
		Bucket:         "glasscast_live",
		History:        1,
		Storage:        jetstream.FileStorage,
		TTL:            LiveTTL,
		LimitMarkerTTL: time.Minute, // watchers hear about expiry, so edges drop dead streams
	}
	if s.Live, err = openTable[Live](ctx, js, repl, live); err != nil {
		return nil, err
	}
	sessions := durable("glasscast_sessions")
	sessions.TTL = 30 * 24 * time.Hour
	if s.Sessions, err = openTable[Session](ctx, js, repl, sessions); err != nil {
		return nil, err
	}
	if err := s.openChat(ctx, js, repl); err != nil {
		return nil, err
	}
	uses := durable("glasscast_token_uses")
	uses.TTL = 7 * 24 * time.Hour // longer than any token a viewer should be given
	if s.TokenUses, err = openTable[int64](ctx, js, repl, uses); err != nil {
		return nil, err
	}
	if s.Secrets, err = openTable[string](ctx, js, repl, durable("glasscast_secrets")); err != nil {
		return nil, err
	}
	if err := s.openStreamKeyIndex(ctx); err != nil {
		return nil, err
	}
	if s.Nodes, err = openTable[Node](ctx, js, repl, nodesConfig(durable("glasscast_nodes"))); err != nil {
		return nil, err
	}
	return s, nil
}

// Secret returns the shared secret named name, creating it with gen on first use. Concurrent
// first uses on several nodes agree on one value: only one Create wins, the others read it.
func (s *Store) Secret(ctx context.Context, name string, gen func() string) (string, error) {
	if v, ok := s.Secrets.Get(name); ok {
		return v, nil
	}
	err := s.Secrets.Create(ctx, name, gen())
	if err != nil && !errors.Is(err, ErrExists) {
		return "", err
	}
	for {
		if v, ok := s.Secrets.Get(name); ok {
			return v, nil
		}
		select {
		case <-s.Secrets.Changed():
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// SessionKey is the Sessions table key of a broadcast.
func SessionKey(channelID, streamID string) string { return channelID + "." + streamID }
