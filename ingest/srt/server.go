// Package srt accepts broadcasts over SRT for the ingest session (package ingest), as IVS
// does: MPEG-TS carrying H.264 or H.265 and AAC (or Opus), the stream key as the SRT
// streamid (plain, or as the access-control form "#!::r=<key>,m=publish"), and AES
// encryption with the channel's passphrase unless the channel allows insecure ingest.
package srt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"glasscast/ingest"
)

// Config configures the SRT listener.
type Config struct {
	// Listen is the UDP address of the SRT listener; empty disables it.
	Listen string
	// Latency is the receiver's SRT latency (TSBPD delay), the time it gives lost packets to
	// be retransmitted; a publisher that asks for more gets more. About 4 times the round trip
	// suits lossy links (default 500 ms).
	Latency time.Duration
	// PeerIdleTimeout disconnects a publisher that sends nothing, not even keepalives, for
	// this long (default 10 s).
	PeerIdleTimeout time.Duration
	// MaxPublishers bounds SRT publishers (default 1000); MaxPending bounds connection
	// requests being decided (stream key, passphrase, channel claim) at once (default 64).
	MaxPublishers int
	MaxPending    int
	// StartTimeout bounds the time from an accepted connection to the stream's tracks (the
	// first program table and parameter sets; default 10 s).
	StartTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Latency <= 0 {
		c.Latency = 500 * time.Millisecond
	}
	if c.PeerIdleTimeout <= 0 {
		c.PeerIdleTimeout = 10 * time.Second
	}
	if c.MaxPublishers <= 0 {
		c.MaxPublishers = 1000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 64
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
}

// Server is the SRT ingest: an ingest.Listener.
type Server struct {
	cfg Config
	in  *ingest.Server
	log *slog.Logger

	ln         gosrt.Listener
	pending    chan struct{} // a slot per connection request being decided
	mu         sync.Mutex
	publishers int
	live       map[string]*liveConn // accepted publishers by channel ID
	wg         sync.WaitGroup
}

// silentFor is how long an accepted publisher must have sent nothing before a new connection
// with its stream key takes its place. SRT runs over UDP: a publisher that crashed or lost its
// link leaves no trace until the peer idle timeout, and coming back before that it would be
// refused as a second publisher; RTMP's TCP connection is reset at once.
const silentFor = time.Second

// liveConn is an accepted publisher.
type liveConn struct {
	box  *connBox
	last atomic.Int64  // when data last arrived, in Unix nanoseconds
	done chan struct{} // closed once its session is detached
}

// New returns an SRT ingest that publishes through the session in.
func New(cfg Config, in *ingest.Server, log *slog.Logger) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, in: in, log: log, pending: make(chan struct{}, cfg.MaxPending), live: map[string]*liveConn{}}
}

// Listen opens the UDP listener and returns its address. Serve then accepts on it.
func (s *Server) Listen() (net.Addr, error) {
	c := gosrt.DefaultConfig()
	c.ReceiverLatency = s.cfg.Latency
	c.PeerLatency = s.cfg.Latency
	c.PeerIdleTimeout = s.cfg.PeerIdleTimeout
	ln, err := gosrt.Listen("srt", s.cfg.Listen, c)
	if err != nil {
		return nil, fmt.Errorf("srt listen: %w", err)
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Serve implements ingest.Listener: it accepts publishers until ctx ends, then closes the
// listener and waits for the connections (ingest.Server.Serve disconnects publishers).
func (s *Server) Serve(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.accept(ctx)
	}()
	<-ctx.Done()
	s.ln.Close()
	<-done
	s.wg.Wait()
	return nil
}

func (s *Server) accept(ctx context.Context) {
	for {
		req, err := s.ln.Accept2()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, gosrt.ErrListenerClosed) {
				return
			}
			s.log.Warn("srt accept", "err", err)
			return // the listener's socket failed: nothing more can be accepted
		}
		select {
		case s.pending <- struct{}{}:
		default:
			// Deciding a request takes a store look-up and maybe a cluster-wide claim; past
			// MaxPending at once, further requests are turned away rather than queued.
			req.Reject(gosrt.REJX_OVERLOAD)
			s.log.Debug("srt connection refused: too many pending requests", "remote", req.RemoteAddr())
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer ingest.Recovered(s.log, "an srt connection")
			s.handle(ctx, req)
		}()
	}
}

// streamKey returns the stream key a streamid carries: the streamid itself, or the r key of
// SRT's access-control form "#!::r=<key>,m=publish" (whose mode, if given, must be publish).
func streamKey(streamID string) (string, error) {
	body, ok := strings.CutPrefix(streamID, "#!::")
	if !ok {
		if streamID == "" {
			return "", errors.New("no streamid (the stream key)")
		}
		return streamID, nil
	}
	var key string
	for _, kv := range strings.Split(body, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "r":
			key = v
		case "m":
			if v != "publish" {
				return "", fmt.Errorf("streamid mode %q: Glasscast takes publishers only (m=publish)", v)
			}
		}
	}
	if key == "" {
		return "", errors.New("streamid has no r=<stream key>")
	}
	return key, nil
}

// claimPublisher takes a publisher slot, or reports that none is left.
func (s *Server) claimPublisher() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publishers >= s.cfg.MaxPublishers {
		return false
	}
	s.publishers++
	return true
}

func (s *Server) releasePublisher() {
	s.mu.Lock()
	s.publishers--
	s.mu.Unlock()
}

// handle decides a connection request and, once accepted, reads the stream until it ends.
// Every request is answered, accepted or rejected: gosrt keeps unanswered ones.
func (s *Server) handle(ctx context.Context, req gosrt.ConnRequest) {
	decided := false
	defer func() {
		if !decided {
			<-s.pending
		}
	}()
	log := s.log.With("remote", req.RemoteAddr().String(), "protocol", "srt", "encrypted", req.IsEncrypted())
	reject := func(reason gosrt.RejectionReason, why string) {
		log.Warn("srt publish refused", "reason", why)
		req.Reject(reason)
	}
	if req.Version() < 5 {
		reject(gosrt.REJ_VERSION, "SRT handshake version 4 carries no streamid (the stream key)")
		return
	}
	key, err := streamKey(req.StreamId())
	if err != nil {
		reject(gosrt.REJX_BAD_REQUEST, err.Error())
		return
	}
	ch, keyID, err := s.in.Authorize(key, req.IsEncrypted())
	if keyID != "" {
		log = log.With("streamKey", keyID)
	}
	if err != nil {
		reason := gosrt.REJX_UNAUTHORIZED
		if keyID != "" && !req.IsEncrypted() {
			reason = gosrt.REJ_UNSECURE // the key is right; the channel requires encryption
		}
		reject(reason, err.Error())
		return
	}
	log = log.With("channel", ch.ID)
	if req.IsEncrypted() {
		// The key material only decrypts with the channel's passphrase; a wrong one fails here.
		if ch.SRTPassphrase == "" || req.SetPassphrase(ch.SRTPassphrase) != nil {
			reject(gosrt.REJ_BADSECRET, "wrong SRT passphrase")
			return
		}
	}
	if !s.claimPublisher() {
		reject(gosrt.REJX_OVERLOAD, fmt.Sprintf("too many SRT publishers (maxPublishers %d)", s.cfg.MaxPublishers))
		return
	}
	defer s.releasePublisher()

	box := &connBox{}
	sess, err := s.in.Attach(ctx, ingest.Publisher{Channel: ch, Log: log, Close: box.close})
	if err != nil && s.takeOver(ctx, ch.ID, log) {
		sess, err = s.in.Attach(ctx, ingest.Publisher{Channel: ch, Log: log, Close: box.close})
	}
	if err != nil {
		reject(gosrt.REJX_CONFLICT, err.Error())
		return
	}
	conn, err := req.Accept()
	decided = true
	<-s.pending
	if err != nil {
		log.Warn("srt accept", "err", err)
		sess.Detach(ctx, err)
		return
	}
	box.set(conn)
	defer box.close()
	lc := &liveConn{box: box, done: make(chan struct{})}
	lc.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.live[ch.ID] = lc
	s.mu.Unlock()
	log.Info("publisher connected", "stream", sess.StreamID())
	p := &publisher{s: sess, conn: conn, log: log, startTimeout: s.cfg.StartTimeout, last: &lc.last}
	err = p.run(ctx)
	var st gosrt.Statistics
	conn.Stats(&st)
	a := st.Accumulated
	log.Info("publisher disconnected", "stream", sess.StreamID(), "reason", errString(err),
		"packets", a.PktRecv, "lost", a.PktRecvLoss, "retransmitted", a.PktRecvRetrans, "dropped", a.PktRecvDrop,
		"undecrypted", a.PktRecvUndecrypt, "decodeErrors", p.decodeErrors)
	sess.Detach(ctx, err)
	s.mu.Lock()
	if s.live[ch.ID] == lc {
		delete(s.live, ch.ID)
	}
	s.mu.Unlock()
	close(lc.done)
}

// takeOver disconnects the channel's publisher on this listener if it has sent nothing for
// silentFor, and reports whether it is gone: its session then waits in its reconnect grace.
func (s *Server) takeOver(ctx context.Context, channelID string, log *slog.Logger) bool {
	s.mu.Lock()
	lc := s.live[channelID]
	s.mu.Unlock()
	if lc == nil {
		return false
	}
	silent := time.Since(time.Unix(0, lc.last.Load()))
	if silent < silentFor {
		return false
	}
	log.Info("the channel's SRT publisher is silent; the new connection takes its place", "silent", silent.Round(time.Millisecond))
	lc.box.close()
	select {
	case <-lc.done:
		return true
	case <-time.After(flushWait):
	case <-ctx.Done():
	}
	return false
}

// flushWait bounds the wait for a replaced publisher's session to detach (its last part).
const flushWait = 5 * time.Second

func errString(err error) string {
	if err == nil {
		return "closed by publisher"
	}
	return err.Error()
}

// connBox holds a connection that StopStream may close before it exists (between the
// channel claim and the SRT accept): then it is closed as soon as it does.
type connBox struct {
	mu     sync.Mutex
	conn   gosrt.Conn
	closed bool
}

func (b *connBox) set(c gosrt.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn = c
	if b.closed {
		c.Close()
	}
}

func (b *connBox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil && !b.closed {
		b.conn.Close()
	}
	b.closed = true
}
