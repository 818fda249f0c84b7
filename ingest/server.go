// Package ingest accepts broadcasts over RTMP and RTMPS: it authorizes the stream key in the
// publish path, keeps the channel's live registration and stream session up to date, and
// packages the media into LL-HLS parts that it hands to the origin.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"

	"glasscast/events"
	"glasscast/media"
	"glasscast/metadata"
	"glasscast/metrics"
	"glasscast/store"
)

// Config is the ingest's configuration.
type Config struct {
	// RTMPListen and RTMPSListen are listener addresses; empty disables one.
	RTMPListen  string
	RTMPSListen string
	// TLS serves RTMPS.
	TLS *tls.Config
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
	// MaxPending bounds connections that have not yet had a stream key accepted (default
	// 1000); MaxPendingPerIP bounds those of one address (an IPv6 /64; default 8). Past either,
	// the oldest pending connection is closed to make room (see admission).
	MaxPending      int
	MaxPendingPerIP int
	// MaxPublishers bounds connections publishing with an accepted stream key (default 1000),
	// in a pool of their own that pending connections cannot fill.
	MaxPublishers int
	// HandshakeTimeout bounds the time from TCP accept to an accepted publish: the TLS
	// handshake, RTMP's handshake, connect and publish (default 3 s).
	HandshakeTimeout time.Duration
	// MetadataRate is how many timed metadata cues per second a channel accepts, from
	// PutMetadata and in-band RTMP metadata together (IVS: 5).
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
	if c.MaxPending <= 0 {
		c.MaxPending = 1000
	}
	if c.MaxPendingPerIP <= 0 {
		c.MaxPendingPerIP = 8
	}
	if c.MaxPublishers <= 0 {
		c.MaxPublishers = 1000
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 3 * time.Second
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

	mu          sync.Mutex
	broadcasts  map[string]*broadcast // by channel ID
	adm         *admission
	evictions   *rate.Limiter // paces the warning about pending connections pushed out
	timeouts    atomic.Int64  // connections cut by the handshake deadline
	timeoutWarn *rate.Limiter // paces the warning about them
	wg          sync.WaitGroup
	addrs       map[string]net.Addr
}

// New returns an ingest that hands packaged media to sink.
func New(cfg Config, st *store.Store, nc *nats.Conn, sink media.Sink, log *slog.Logger) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, store: st, nc: nc, sink: sink, log: log,
		broadcasts: map[string]*broadcast{}, addrs: map[string]net.Addr{},
		adm:       newAdmission(cfg.MaxPending, cfg.MaxPendingPerIP, cfg.MaxPublishers),
		evictions: rate.NewLimiter(rate.Every(10*time.Second), 1), timeoutWarn: rate.NewLimiter(rate.Every(10*time.Second), 1)}
}

// Listen opens the configured listeners. Serve then accepts on them.
func (s *Server) Listen() ([]net.Listener, error) {
	var out []net.Listener
	if s.cfg.RTMPListen != "" {
		l, err := net.Listen("tcp", s.cfg.RTMPListen)
		if err != nil {
			return nil, fmt.Errorf("rtmp listen: %w", err)
		}
		out = append(out, &secureListener{Listener: l, secure: false})
	}
	if s.cfg.RTMPSListen != "" {
		if s.cfg.TLS == nil {
			closeAll(out)
			return nil, errors.New("rtmps needs a TLS configuration")
		}
		l, err := net.Listen("tcp", s.cfg.RTMPSListen)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("rtmps listen: %w", err)
		}
		out = append(out, &secureListener{Listener: tls.NewListener(l, s.cfg.TLS), secure: true})
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// secureListener remembers whether its connections are encrypted, which decides whether a
// channel with insecureIngest false may publish on them.
type secureListener struct {
	net.Listener
	secure bool
}

// Serve accepts publishers until ctx ends, then disconnects them and ends their broadcasts.
func (s *Server) Serve(ctx context.Context, listeners []net.Listener) error {
	var wg sync.WaitGroup
	for _, l := range listeners {
		sl := l.(*secureListener)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.accept(ctx, sl)
		}()
	}
	<-ctx.Done()
	closeAll(listeners)
	wg.Wait()
	s.endAll()
	s.wg.Wait()
	return nil
}

func (s *Server) accept(ctx context.Context, l *secureListener) {
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (out of file descriptors) back off instead of spinning.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.log.Warn("rtmp accept", "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		raw := conn
		if tc, ok := conn.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		pc, evicted := s.adm.admit(raw)
		for _, e := range evicted {
			e.raw.Close()
			s.log.Debug("rtmp pending connection closed to make room", "remote", e.raw.RemoteAddr())
		}
		if len(evicted) > 0 && s.evictions.Allow() {
			pending, _ := s.adm.counts()
			s.log.Warn("rtmp: too many connections without an accepted stream key; closing the oldest",
				"pending", pending, "maxPending", s.cfg.MaxPending, "maxPendingPerIp", s.cfg.MaxPendingPerIP, "remote", conn.RemoteAddr())
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn, pc, l.secure)
		}()
	}
}

// endAll ends every broadcast at shutdown, so playlists get ENDLIST and nothing stays LIVE.
func (s *Server) endAll() {
	s.mu.Lock()
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
