// Package chat is the IVS Chat messaging relay every edge runs: it accepts the WebSocket that
// amazon-ivs-chat-messaging opens with a chat token as its subprotocol, and relays each room's
// frames between its clients on all edges through a JetStream stream in NATS.
package chat

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"glasscast/chat/review"
	"glasscast/chat/token"
	"glasscast/chat/wire"
	"glasscast/store"
)

// Config is the relay's configuration.
type Config struct {
	Region, Account string
	// SendQueue bounds the frames waiting for one client; a client that falls further behind is
	// disconnected rather than slowing its room.
	SendQueue int
	// PingInterval is how often idle connections are pinged; a peer silent for two intervals is gone.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// ReviewTargets maps review handler URIs (Lambda ARNs) to webhook URLs.
	ReviewTargets map[string]string
	// ConnRequestsPerSecond and ConnRequestBurst bound the frames one connection may send,
	// well-formed or not, answered with ERROR 429 past them; a client that sends another
	// ConnRequestBurst frames past them in a row is disconnected (close 1008).
	ConnRequestsPerSecond float64
	ConnRequestBurst      int
	// StreamMaxBytes and StreamMaxAge bound the chat stream (see wire.StreamConfig).
	StreamMaxBytes int64
	StreamMaxAge   time.Duration
}

func (c *Config) defaults() {
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ConnRequestsPerSecond <= 0 {
		c.ConnRequestsPerSecond = 20
	}
	if c.ConnRequestBurst <= 0 {
		c.ConnRequestBurst = 50
	}
	if c.StreamMaxBytes <= 0 {
		c.StreamMaxBytes = 256 << 20
	}
	if c.StreamMaxAge <= 0 {
		c.StreamMaxAge = time.Hour
	}
}

// Server accepts chat connections. It serves both net/http (ServeHTTP) and fasthttp
// (ServeFastHTTP) listeners; rooms span every Server joined to the same NATS.
type Server struct {
	cfg      Config
	store    *store.Store
	js       jetstream.JetStream
	relay    *wire.Relay
	sealer   *token.Sealer
	reviewer *review.Reviewer
	log      *slog.Logger
	ctx      context.Context // ends the rooms' stream consumers

	upgrader     websocket.Upgrader
	fastUpgrader websocket.FastHTTPUpgrader
	joinPool     sync.Pool // buffers joining frames for connections without writev

	mu     sync.Mutex
	rooms  map[string]*room
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a relay; it creates the chat stream if needed. Consumers live until ctx ends.
func New(ctx context.Context, cfg Config, st *store.Store, js jetstream.JetStream, log *slog.Logger) (*Server, error) {
	cfg.defaults()
	relay, sealer, err := openShared(ctx, cfg, st, js)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: st, js: js, relay: relay, sealer: sealer, log: log, ctx: ctx,
		reviewer: &review.Reviewer{Targets: cfg.ReviewTargets, Client: &http.Client{Timeout: review.Timeout}},
		rooms:    map[string]*room{}, conns: map[*conn]struct{}{}}
	pool := &sync.Pool{}
	// The token authenticates, not a cookie, so a page from any origin may connect.
	s.upgrader = websocket.Upgrader{HandshakeTimeout: 10 * time.Second, WriteBufferPool: pool,
		CheckOrigin: func(*http.Request) bool { return true }}
	// fasthttp keeps its own read buffer under a hijacked connection: a small one on top will do.
	s.fastUpgrader = websocket.FastHTTPUpgrader{HandshakeTimeout: 10 * time.Second, WriteBufferPool: pool, ReadBufferSize: 1024,
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	return s, nil
}

// admission is an accepted token, before the WebSocket handshake completes.
type admission struct {
	token  string
	claims *token.Claims
	room   *room
}

// errRefused is a handshake refusal with its HTTP status.
type errRefused struct {
	status int
	msg    string
}

func (e *errRefused) Error() string { return e.msg }

// admit checks the token offered as the subprotocol and claims it, so it cannot be used again on
// any edge, then joins its room; the caller attaches a connection to it, whose detach leaves.
func (s *Server) admit(ctx context.Context, protocols string) (*admission, error) {
	tok, _, _ := strings.Cut(protocols, ",")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, &errRefused{http.StatusUnauthorized, "a chat token is required as the WebSocket subprotocol"}
	}
	claims, err := s.sealer.Open(tok, time.Now())
	if errors.Is(err, token.ErrExpired) {
		return nil, &errRefused{http.StatusUnauthorized, "the chat token has expired"}
	}
	if err != nil {
		return nil, &errRefused{http.StatusUnauthorized, "the chat token is not valid"}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !s.roomExists(ctx, claims.RoomID) {
		return nil, &errRefused{http.StatusNotFound, "the token's room does not exist"}
	}
	if err := s.store.ChatTokens.Claim(ctx, claims.ID); errors.Is(err, store.ErrExists) {
		return nil, &errRefused{http.StatusUnauthorized, "the chat token was already used"}
	} else if err != nil {
		s.log.Error("chat: claiming a token failed", "err", err)
		return nil, &errRefused{http.StatusInternalServerError, "internal error"}
	}
	rm, err := s.join(ctx, claims.RoomID)
	if err != nil {
		s.log.Error("chat: joining a room failed", "room", claims.RoomID, "err", err)
		return nil, &errRefused{http.StatusInternalServerError, "internal error"}
	}
	return &admission{token: tok, claims: claims, room: rm}, nil
}

// roomExists looks the room up in this node's replica of the rooms table. A room created a moment
// ago on another node may not have reached the replica yet, so a miss waits briefly for it.
func (s *Server) roomExists(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		changed := s.store.Rooms.Changed()
		if _, ok := s.store.Rooms.Get(id); ok {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// ServeHTTP accepts a chat WebSocket on a net/http listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "this is the IVS Chat messaging endpoint: connect with a WebSocket and a chat token", http.StatusBadRequest)
		return
	}
	if err := checkHandshake(r.Method, r.Header.Get("Sec-WebSocket-Version"), r.Header.Get("Sec-WebSocket-Key")); err != nil {
		if err.status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, err.msg, err.status)
		return
	}
	a, err := s.admit(r.Context(), r.Header.Get("Sec-WebSocket-Protocol"))
	if err != nil {
		var re *errRefused
		errors.As(err, &re)
		http.Error(w, re.msg, re.status)
		return
	}
	c := s.attach(a, remoteIP(r.RemoteAddr))
	// The token is echoed as the selected subprotocol: browsers, undici and ws fail otherwise.
	ws, err := s.upgrader.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {a.token}})
	if err != nil {
		c.detach()
		return
	}
	c.run(ws)
}

// ServeFastHTTP accepts a chat WebSocket on a fasthttp listener.
func (s *Server) ServeFastHTTP(ctx *fasthttp.RequestCtx) {
	if !websocket.FastHTTPIsWebSocketUpgrade(ctx) {
		ctx.Error("this is the IVS Chat messaging endpoint: connect with a WebSocket and a chat token", http.StatusBadRequest)
		return
	}
	if err := checkHandshake(string(ctx.Method()), string(ctx.Request.Header.Peek("Sec-WebSocket-Version")),
		string(ctx.Request.Header.Peek("Sec-WebSocket-Key"))); err != nil {
		if err.status == http.StatusUpgradeRequired {
			ctx.Response.Header.Set("Sec-WebSocket-Version", "13")
		}
		ctx.Error(err.msg, err.status)
		return
	}
	// A fasthttp RequestCtx is recycled once the handler returns: nothing that outlives the
	// handshake may hold it as its context.
	a, err := s.admit(s.ctx, string(ctx.Request.Header.Peek("Sec-WebSocket-Protocol")))
	if err != nil {
		var re *errRefused
		errors.As(err, &re)
		ctx.Error(re.msg, re.status)
		return
	}
	ctx.Response.Header.Set("Sec-WebSocket-Protocol", a.token)
	c := s.attach(a, remoteIP(ctx.RemoteAddr().String()))
	var started atomic.Bool
	err = s.fastUpgrader.Upgrade(ctx, func(ws *websocket.Conn) {
		started.Store(true)
		c.run(ws)
	})
	if err != nil {
		c.detach()
		return
	}
	// fasthttp runs the handler once the 101 answer is written; if that fails it never does.
	time.AfterFunc(30*time.Second, func() {
		if !started.Load() {
			c.detach()
		}
	})
}

// checkHandshake refuses, before the token is claimed, every request the upgrader would
// refuse (IsWebSocketUpgrade checked the Connection and Upgrade headers; the origin check
// passes every origin), so a handshake that fails leaves its single-use token unspent. Only a
// connection lost in the middle of the upgrade can still spend one.
func checkHandshake(method, version, key string) *errRefused {
	if method != http.MethodGet {
		return &errRefused{http.StatusMethodNotAllowed, "a WebSocket handshake is a GET request"}
	}
	supported := false
	for _, v := range strings.Split(version, ",") {
		if strings.TrimSpace(v) == "13" {
			supported = true
		}
	}
	if !supported {
		// RFC 6455 4.4: say which version the server speaks.
		return &errRefused{http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version: this server speaks version 13"}
	}
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return &errRefused{http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64"}
	}
	return nil
}

func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Close disconnects every client and waits for their goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, c := range conns {
			c.detach()
		}
		s.wg.Wait()
	}
}

// Conns is the number of open chat connections on this node.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// roomARN is the ARN of a room, for review payloads.
func (s *Server) roomARN(id string) string {
	return fmt.Sprintf("arn:aws:ivschat:%s:%s:room/%s", s.cfg.Region, s.cfg.Account, id)
}
