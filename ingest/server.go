// Package ingest is the protocol-neutral half of the ingest role: the broadcast session. It
// authorizes stream keys through the store, claims the channel cluster-wide, keeps the live
// registration, the stream session and its events up to date, waits out a publisher's
// reconnect, judges stream health, takes timed metadata, and packages (or transcodes) the
// media into LL-HLS parts that it hands to the origin.
//
// Each ingest protocol is a package beside it (ingest/rtmp, ingest/srt) that accepts
// connections and calls the session API: Server.Authorize, Server.Attach, then the Session's
// Start, Write* and AddCue, and Detach at the end. Server.Serve runs the protocols' listeners.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"glasscast/events"
	"glasscast/media"
	"glasscast/metadata"
	"glasscast/metrics"
	"glasscast/store"
)

// Config is the session's configuration; each protocol package has its own for its listeners.
type Config struct {
	// Node names this ingest in live registrations, so requests for a channel reach it.
	Node string
	// Origins are the base URLs at which other processes reach the origin(s) this ingest feeds.
	Origins []string
	// PartTarget and SegmentTarget shape LOW-latency packaging (0.2 s and 2 s by default).
	PartTarget    time.Duration
	SegmentTarget time.Duration
	// NormalSegmentTarget is the segment duration of NORMAL-latency channels (default 2 s).
	NormalSegmentTarget time.Duration
	// ReconnectGrace is how long a broadcast waits for its publisher to come back before it
	// ends; a publisher that reconnects in time continues the same stream session.
	ReconnectGrace time.Duration
	// MetadataRate is how many timed metadata cues per second a channel accepts, from
	// PutMetadata and in-band metadata together (IVS: 5).
	MetadataRate int
	// Heartbeat is how often live registrations are refreshed (default 2 s).
	Heartbeat time.Duration
	// Transcode configures the ffmpeg ladder of STANDARD and ADVANCED channels.
	Transcode TranscodeConfig
	// Events hears stream state and health changes, as EventBridge events; nil: nobody.
	Events events.StreamEvents
	// Meters measures each broadcast's input every second (IVS's ingest metrics); nil: none.
	Meters metrics.IngestMeters
}

// TranscodeConfig configures transcoding.
type TranscodeConfig struct {
	// Disabled passes every channel through as BASIC channels are (no ffmpeg needed).
	Disabled bool
	// FFmpeg is the ffmpeg command (default "ffmpeg", found on PATH).
	FFmpeg string
	// X264Preset is the encoder speed of the renditions (default "veryfast").
	X264Preset string
}

func (c *Config) defaults() {
	if c.PartTarget == 0 {
		c.PartTarget = 200 * time.Millisecond
	}
	if c.SegmentTarget == 0 {
		c.SegmentTarget = 2 * time.Second
	}
	if c.NormalSegmentTarget == 0 {
		c.NormalSegmentTarget = 2 * time.Second
	}
	if c.ReconnectGrace == 0 {
		c.ReconnectGrace = 5 * time.Second
	}
	if c.MetadataRate == 0 {
		c.MetadataRate = metadata.RatePerSecond
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 2 * time.Second
	}
	if c.Meters == nil {
		c.Meters = metrics.NopIngest{}
	}
}

// Server is the ingest role.
type Server struct {
	cfg   Config
	store *store.Store
	nc    *nats.Conn
	sink  media.Sink
	log   *slog.Logger

	mu         sync.Mutex
	broadcasts map[string]*broadcast // by channel ID
	closing    bool                  // Serve's context ended: no new publisher is attached
	wg         sync.WaitGroup
}

// New returns an ingest that hands packaged media to sink.
func New(cfg Config, st *store.Store, nc *nats.Conn, sink media.Sink, log *slog.Logger) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, store: st, nc: nc, sink: sink, log: log, broadcasts: map[string]*broadcast{}}
}

// Listener is one protocol's listeners (ingest/rtmp, ingest/srt), already listening.
type Listener interface {
	// Serve accepts publishers until ctx ends, then stops accepting and returns once the
	// connections it serves are gone (Serve ends their broadcasts, which disconnects them).
	Serve(ctx context.Context) error
}

// Serve runs the protocols' listeners until ctx ends, then ends every broadcast (playlists get
// ENDLIST, nothing stays LIVE) and returns once the listeners and the sessions are done.
func (s *Server) Serve(ctx context.Context, listeners ...Listener) error {
	var wg sync.WaitGroup
	errs := make([]error, len(listeners))
	for i, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Serve(ctx)
		}()
	}
	<-ctx.Done()
	s.endAll()
	wg.Wait()
	s.wg.Wait()
	return errors.Join(errs...)
}

// Authorize returns the channel a stream key publishes to and the key's ID, which logs may
// show (the key itself must never reach a log). secure says whether the publisher's transport
// is encrypted (RTMPS, SRT with a passphrase): a channel with insecureIngest false accepts
// only those.
func (s *Server) Authorize(key string, secure bool) (store.Channel, string, error) {
	keyID, ok := s.store.StreamKeyValues.Get(s.store.StreamKeyDigest(key))
	if !ok {
		return store.Channel{}, "", errRefused{"unknown stream key"}
	}
	k, ok := s.store.StreamKeys.Get(keyID)
	if !ok {
		return store.Channel{}, keyID, errRefused{"unknown stream key"}
	}
	ch, ok := s.store.Channels.Get(k.ChannelID)
	if !ok || !slices.Contains(ch.StreamKeys, k.ID) {
		return store.Channel{}, keyID, errRefused{"the stream key's channel was deleted"}
	}
	if !secure && !ch.InsecureIngest {
		return store.Channel{}, keyID, errRefused{"channel accepts RTMPS only, or SRT with its passphrase (insecureIngest is false)"}
	}
	return ch, keyID, nil
}

// errRefused marks a publish refused for a reason worth logging at warn level.
type errRefused struct{ reason string }

func (e errRefused) Error() string { return "publish refused: " + e.reason }

// endAll ends every broadcast at shutdown, so playlists get ENDLIST and nothing stays LIVE.
func (s *Server) endAll() {
	s.mu.Lock()
	s.closing = true
	bs := make([]*broadcast, 0, len(s.broadcasts))
	for _, b := range s.broadcasts {
		bs = append(bs, b)
	}
	s.mu.Unlock()
	for _, b := range bs {
		b.stop("ingest shutting down")
	}
	for _, b := range bs {
		<-b.done
	}
}
