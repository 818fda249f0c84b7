// Package origin holds each live channel's recent init segments, segments and parts in memory
// and answers LL-HLS playlist and object requests. It is the media.Sink the ingest publishes
// to and the http.Handler edges fetch from.
package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"glasscast/media"
)

// Errors a Broadcast returns besides media.ErrNotFound.
var (
	// ErrClosed is returned once the Origin is closed.
	ErrClosed = errors.New("origin closed")
	// ErrSuperseded (media.ErrSuperseded) is returned to a Broadcast handle after another Open took over its
	// channel: a newer broadcast, or the same one reopened by a reconnecting publisher.
	ErrSuperseded = media.ErrSuperseded
	// ErrOutOfOrder is returned for a part that does not continue its rendition: a gap in
	// MSNs or part indexes, or a part for a segment already complete.
	ErrOutOfOrder = errors.New("part out of order")
	// ErrInvalid is returned for a stream, rendition or part that cannot be published.
	ErrInvalid = errors.New("invalid")
)

// Config configures an Origin. The zero value is usable.
type Config struct {
	// Region and Account, when set, must match those of playback paths; empty accepts any.
	Region, Account string
	// Window is how many complete segments a media playlist lists. Default 12, at least 6.
	Window int
	// Retention is how long segments and their parts stay downloadable after they leave the
	// window. Default and minimum: three target durations of the stream (P12).
	Retention time.Duration
	// Linger is how long an ended broadcast's playlists (with EXT-X-ENDLIST) stay available
	// before the channel reads as offline. Default 2 minutes.
	Linger time.Duration
	// DateRanges mirrors timed metadata (media.Part.Cues) as EXT-X-DATERANGE tags, and with
	// them advertises CAN-SKIP-DATERANGES. Possible because every segment carries a PDT.
	DateRanges bool
	// PartHoldBack is PART-HOLD-BACK in part targets: at least 2, the spec's MUST; default 3,
	// its SHOULD. Lower makes hls.js and Safari aim closer to the live edge, at more risk of
	// stalls.
	PartHoldBack float64
	// DisableDeltaUpdates stops advertising CAN-SKIP-UNTIL; _HLS_skip is then ignored.
	DisableDeltaUpdates bool
	// Live, when set, reports the stream registered as on air on a channel, if any. A
	// broadcast that received nothing for IdleEnd and whose stream is no longer registered is
	// ended (EXT-X-ENDLIST, then offline after Linger): its ingest died without closing it.
	// The origin consults it only for idle broadcasts, from its sweeper.
	Live func(channelID string) (streamID string, ok bool)
	// IdleEnd is how long a broadcast may receive nothing before Live is consulted: longer
	// than a publisher's reconnect grace, so a reconnecting publisher never loses its
	// broadcast. Default 20 s.
	IdleEnd time.Duration
	// Clock returns the current time; it stamps removals and broadcast ends. Default time.Now.
	// Blocking requests always wait in real time.
	Clock func() time.Time
	// Logger receives publishing anomalies. Default: discard.
	Logger *slog.Logger
}

const (
	defaultWindow = 12
	minWindow     = 6
	// PART-HOLD-BACK in part targets (section 4.4.3.8: MUST be at least 2, SHOULD be 3).
	defaultPartHoldBack = 3
	minPartHoldBack     = 2
	defaultLinger       = 2 * time.Minute
	defaultIdle         = 20 * time.Second
	// sweepEvery is how often idle memory (expired removed segments, broadcasts past their
	// linger) is released when no publishing activity does it first.
	sweepEvery = time.Second
)

// Origin is an in-memory LL-HLS origin. It implements media.Sink for publishers and
// http.Handler for playback paths (media.ParsePlaybackPath).
type Origin struct {
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex
	channels map[string]*broadcast // by channel ID
	closed   bool

	held        atomic.Int64 // bytes of init and part data held
	stats       counters
	bufs        bufferPool
	gzipWriters sync.Pool

	stop chan struct{}
	done chan struct{}
}

// New returns a running Origin. Close releases it.
func New(cfg Config) *Origin {
	if cfg.Window <= 0 {
		cfg.Window = defaultWindow
	}
	cfg.Window = max(cfg.Window, minWindow)
	if cfg.PartHoldBack == 0 {
		cfg.PartHoldBack = defaultPartHoldBack
	}
	cfg.PartHoldBack = max(cfg.PartHoldBack, minPartHoldBack)
	if cfg.Linger <= 0 {
		cfg.Linger = defaultLinger
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.IdleEnd <= 0 {
		cfg.IdleEnd = defaultIdle
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o := &Origin{
		cfg:      cfg,
		log:      log,
		channels: make(map[string]*broadcast),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go o.sweeper()
	return o
}

// Open starts a broadcast, replacing any other broadcast of the channel, or resumes the
// channel's broadcast when StreamID matches it (a publisher reconnecting): its playlists then
// continue and drop EXT-X-ENDLIST if the broadcast had been closed.
func (o *Origin) Open(ctx context.Context, s media.Stream) (media.Broadcast, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateStream(s); err != nil {
		return nil, err
	}
	now := o.cfg.Clock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, ErrClosed
	}
	if cur := o.channels[s.ChannelID]; cur != nil {
		if cur.stream.StreamID == s.StreamID && !cur.expired(now) {
			if cur.stream != s {
				return nil, fmt.Errorf("reopen stream %s: parameters changed: %w", s.StreamID, ErrInvalid)
			}
			return cur.resume(), nil
		}
		if cur.stream.StreamID != s.StreamID {
			o.log.Info("broadcast replaced", "channel", s.ChannelID, "old", cur.stream.StreamID, "new", s.StreamID)
		}
		cur.end(now, anyWriter)
		cur.free()
	}
	b := newBroadcast(o, s)
	o.channels[s.ChannelID] = b
	return b.resume(), nil
}

// Close ends every broadcast, waking the requests that wait on them, and stops the
// background sweeper. Playback requests then find no channel.
func (o *Origin) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	chans := o.channels
	o.channels = make(map[string]*broadcast)
	o.mu.Unlock()

	close(o.stop)
	<-o.done
	now := o.cfg.Clock()
	for _, b := range chans {
		b.end(now, anyWriter)
		b.free()
	}
	return nil
}

// lookup returns the channel's broadcast, or nil when the channel is offline.
func (o *Origin) lookup(channelID string) *broadcast {
	o.mu.RLock()
	b := o.channels[channelID]
	o.mu.RUnlock()
	if b == nil || b.expired(o.cfg.Clock()) {
		return nil
	}
	return b
}

func (o *Origin) sweeper() {
	defer close(o.done)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.sweep()
		}
	}
}

// sweep frees broadcasts past their linger time and removed segments past their retention.
func (o *Origin) sweep() {
	now := o.cfg.Clock()
	o.mu.Lock()
	live := make([]*broadcast, 0, len(o.channels))
	for id, b := range o.channels {
		if b.expired(now) {
			delete(o.channels, id)
			b.free()
			continue
		}
		live = append(live, b)
	}
	o.mu.Unlock()
	for _, b := range live {
		b.prune(now)
		if o.cfg.Live != nil && b.idle(now) >= o.cfg.IdleEnd {
			if id, ok := o.cfg.Live(b.stream.ChannelID); !ok || id != b.stream.StreamID {
				o.log.Warn("ending a broadcast whose ingest stopped without closing it", "channel", b.stream.ChannelID,
					"stream", b.stream.StreamID, "idle", b.idle(now).Round(time.Second))
				b.end(now, anyWriter)
			}
		}
	}
}

func validateStream(s media.Stream) error {
	switch {
	case !safeName(s.ChannelID) || strings.Contains(s.ChannelID, "."):
		// The playback name splits on dots: "<region>.<account>.channel.<id>".
		return fmt.Errorf("channel id %q: %w", s.ChannelID, ErrInvalid)
	case s.StreamID == "":
		return fmt.Errorf("empty stream id: %w", ErrInvalid)
	case s.TargetDuration <= 0:
		return fmt.Errorf("target duration %v: %w", s.TargetDuration, ErrInvalid)
	case s.LowLatency && (s.PartTarget <= 0 || s.PartTarget > s.TargetDuration):
		return fmt.Errorf("part target %v with target duration %v: %w", s.PartTarget, s.TargetDuration, ErrInvalid)
	}
	return nil
}

// safeName accepts what media.ParsePlaybackPath accepts as a path element, so that anything
// published can also be requested.
func safeName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
