// Package rtmp accepts broadcasts over RTMP and RTMPS for the ingest session (package
// ingest): it authorizes the stream key in the publish path, bounds connections that have not
// published yet, reads the tracks, media and in-band metadata, and hands them to the session.
package rtmp

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

	"golang.org/x/time/rate"

	"glasscast/ingest"
)

// Config configures the RTMP and RTMPS listeners.
type Config struct {
	// Listen and TLSListen are the RTMP and RTMPS listener addresses; empty disables one.
	Listen    string
	TLSListen string
	// TLS serves RTMPS.
	TLS *tls.Config
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
}

func (c *Config) defaults() {
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
}

// Server is the RTMP and RTMPS ingest: an ingest.Listener.
type Server struct {
	cfg Config
	in  *ingest.Server
	log *slog.Logger

	adm         *admission
	evictions   *rate.Limiter // paces the warning about pending connections pushed out
	timeouts    atomic.Int64  // connections cut by the handshake deadline
	timeoutWarn *rate.Limiter // paces the warning about them
	wg          sync.WaitGroup
	listeners   []net.Listener
}

// New returns an RTMP ingest that publishes through the session in.
func New(cfg Config, in *ingest.Server, log *slog.Logger) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, in: in, log: log,
		adm:       newAdmission(cfg.MaxPending, cfg.MaxPendingPerIP, cfg.MaxPublishers),
		evictions: rate.NewLimiter(rate.Every(10*time.Second), 1), timeoutWarn: rate.NewLimiter(rate.Every(10*time.Second), 1)}
}

// Listen opens the configured listeners and returns their addresses. Serve then accepts on
// them.
func (s *Server) Listen() ([]net.Addr, error) {
	var out []net.Listener
	if s.cfg.Listen != "" {
		l, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("rtmp listen: %w", err)
		}
		out = append(out, &secureListener{Listener: l, secure: false})
	}
	if s.cfg.TLSListen != "" {
		if s.cfg.TLS == nil {
			closeAll(out)
			return nil, errors.New("rtmps needs a TLS configuration")
		}
		l, err := net.Listen("tcp", s.cfg.TLSListen)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("rtmps listen: %w", err)
		}
		out = append(out, &secureListener{Listener: tls.NewListener(l, s.cfg.TLS), secure: true})
	}
	s.listeners = out
	addrs := make([]net.Addr, len(out))
	for i, l := range out {
		addrs[i] = l.Addr()
	}
	return addrs, nil
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

// Serve implements ingest.Listener: it accepts publishers until ctx ends, then closes the
// listeners and waits for the connections (ingest.Server.Serve disconnects publishers).
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range s.listeners {
		sl := l.(*secureListener)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.accept(ctx, sl)
		}()
	}
	<-ctx.Done()
	closeAll(s.listeners)
	wg.Wait()
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
			defer ingest.Recovered(s.log, "an rtmp connection")
			s.handle(ctx, conn, pc, l.secure)
		}()
	}
}
