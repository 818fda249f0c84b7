package chat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"golang.org/x/time/rate"

	"glasscast/chat/review"
	"glasscast/chat/token"
	"glasscast/chat/wire"
	"glasscast/store"
)

// Error codes of ERROR frames (IVS Chat's messaging API).
const (
	codeBadRequest    = 400
	codeUnauthorized  = 401
	codeForbidden     = 403
	codeNotFound      = 404
	codeDenied        = 406
	codeTooLarge      = 413
	codeRateLimited   = 429
	codeInternalError = 500
)

// maxFrame bounds a client frame: 500 code points of content, 1 KB of attributes and JSON
// escaping fit well inside it; a larger frame closes the connection (1009).
const maxFrame = 16 << 10

var reMessageID = regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)

// closeGrace is how long a connection lives once a close is queued for it: time to write the
// frames ahead of the close and for the client to answer it. A client that does neither (it
// stopped reading, or ignores the close) is dropped then, whatever it is still sending.
const closeGrace = 2 * time.Second

// errClosing is a request the connection no longer serves: a close is queued for it.
var errClosing = errors.New("the connection is closing")

// out is one item of a client's send queue: a frame, or a close after the frames before it.
type out struct {
	frame       []byte // a complete WebSocket frame (header and payload), shared and read-only
	closeCode   int
	closeReason string
	echo        bool // the close answers the client's: the connection ends once it is sent
}

// textFrame frames data as one unmasked server text frame (RFC 6455 5.2). Frames are built once
// per room message and written as they are to every client, so fanning a message out costs one
// write per client and no copying; queued frames go out together in one writev.
func textFrame(data []byte) []byte {
	n := len(data)
	var f []byte
	switch {
	case n < 126:
		f = make([]byte, 2, 2+n)
		f[1] = byte(n)
	case n <= 0xffff:
		f = make([]byte, 4, 4+n)
		f[1] = 126
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f = make([]byte, 10, 10+n)
		f[1] = 127
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	f[0] = 0x81 // FIN, text
	return append(f, data...)
}

// controlFrame frames a ping (0x9) or pong (0xA) with at most 125 bytes of payload. Control
// frames go through the same queue as data frames: a data frame the kernel took only part of
// must be finished before anything else is written on the connection.
func controlFrame(opcode byte, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	return append([]byte{0x80 | opcode, byte(len(payload))}, payload...)
}

// conn is one client connection.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	room   *room
	claims *token.Claims
	ip     string

	limiter *rate.Limiter // frames from the client, well-formed or not
	strikes int           // frames refused in a row; touched only by the reading goroutine

	// The send queue is a slice that grows with the backlog, not a buffered channel: most
	// clients are idle most of the time, and a channel would hold SendQueue slots per client.
	mu         sync.Mutex
	raw        net.Conn        // the TCP connection under the WebSocket
	rc         syscall.RawConn // raw's file descriptor, for writes that do not block
	writing    bool            // the writer goroutine is writing a batch
	queue      [][]byte
	closing    *out // a queued close, sent after the frames before it; the client's frames are then dropped
	wake       chan struct{}
	done       chan struct{} // closed when the connection is over
	once       sync.Once
	detachOnce sync.Once
}

// attach registers a client in its room before its handshake completes, so that frames sent
// between the 101 answer and the socket's start are queued for it rather than lost.
func (s *Server) attach(a *admission, ip string) *conn {
	c := &conn{s: s, room: a.room, claims: a.claims, ip: ip, wake: make(chan struct{}, 1), done: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.cfg.ConnRequestsPerSecond), s.cfg.ConnRequestBurst)}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	a.room.add(c)
	return c
}

// detach undoes attach; it is safe to call more than once.
func (c *conn) detach() {
	c.detachOnce.Do(func() {
		c.kill()
		c.room.remove(c)
		c.s.leave(c.room)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.wg.Done()
	})
}

// run serves the upgraded connection until it ends.
func (c *conn) run(ws *websocket.Conn) {
	defer c.detach()
	raw := ws.NetConn()
	if u, ok := raw.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn() // fasthttp wraps a hijacked connection; writes may go under it
	}
	var rc syscall.RawConn
	if sc, ok := raw.(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	c.mu.Lock()
	c.ws, c.raw, c.rc = ws, raw, rc
	c.mu.Unlock()
	select {
	case <-c.done: // killed (slow, or the server closing) before the socket was up
		_ = ws.NetConn().Close()
		return
	default:
	}

	// The session ends at the token's sessionExpirationTime: ERROR 401 makes the SDK reconnect
	// with a fresh token.
	expiry := time.AfterFunc(time.Until(c.claims.SessionExpires), func() {
		c.enqueue(out{frame: textFrame(wire.Encode(wire.NewError("", codeUnauthorized, "the chat session has expired")))})
		c.enqueue(out{closeCode: websocket.ClosePolicyViolation, closeReason: "session expired"})
	})
	defer expiry.Stop()

	// The writer must be gone before run returns: fasthttp recycles a hijacked connection once
	// its handler returns, and a write to it after that would use a released object.
	ws.SetPingHandler(func(data string) error {
		// A ping costs a pong: it counts like any frame, and one over the budget is not answered.
		if c.charge(false, nil) {
			c.enqueue(out{frame: controlFrame(0xA, []byte(data))})
		}
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.enqueue(out{closeCode: code, echo: true})
		return nil
	})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	if err := c.readLoop(); closeCode(err) != 0 {
		// The client closed: let the writer send what is queued and the close answer.
		select {
		case <-writerDone:
		case <-time.After(time.Second):
		}
	}
	c.kill()
	<-writerDone
}

// closeCode is the code of a close frame the client sent, or 0.
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// enqueue queues an item without blocking; a client whose queue is full is too slow and is
// disconnected (without a close frame, so the SDK reconnects).
func (c *conn) enqueue(o out) {
	c.mu.Lock()
	switch {
	case c.closing != nil:
	case o.frame == nil:
		c.closing = &o
		time.AfterFunc(closeGrace, c.kill)
	case len(c.queue) >= c.s.cfg.SendQueue:
		c.mu.Unlock()
		c.s.log.Debug("chat: disconnecting a slow client", "room", c.room.id)
		c.kill()
		return
	case len(c.queue) == 0 && !c.writing && c.rc != nil:
		// Nothing is waiting: hand the frame to the kernel from here, which spares waking the
		// writer goroutine for every client of a room. What the kernel does not take at once
		// goes to the writer, before anything queued later.
		n, err := tryWrite(c.rc, o.frame)
		if err != nil {
			c.mu.Unlock()
			c.kill()
			return
		}
		if n == len(o.frame) {
			c.mu.Unlock()
			return
		}
		c.queue = append(c.queue, o.frame[n:])
	default:
		c.queue = append(c.queue, o.frame)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeWith queues a close frame after the frames already queued.
func (c *conn) closeWith(code int, reason string) {
	c.enqueue(out{closeCode: code, closeReason: reason})
}

// kill ends the connection at once.
func (c *conn) kill() {
	c.once.Do(func() {
		close(c.done)
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws != nil {
			_ = ws.NetConn().Close()
		}
	})
}

// writeLoop is the only writer of data frames. It takes every frame already queued and writes
// them with one writev; control frames (ping, close, and the reader's pong replies) go through
// the WebSocket library, whose writes are single Write calls and so never split a frame.
func (c *conn) writeLoop() {
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	defer c.kill()
	c.mu.Lock()
	nc := c.raw
	c.mu.Unlock()
	var spare [][]byte
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			c.enqueue(out{frame: controlFrame(0x9, nil)})
			continue
		case <-c.wake:
		}
		c.mu.Lock()
		batch, closing := c.queue, c.closing
		c.queue = spare[:0]
		c.writing = len(batch) > 0
		c.mu.Unlock()
		if len(batch) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			err := writeFrames(nc, batch, &c.s.joinPool)
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
		clear(batch) // drop references to frames already sent
		spare = batch
		if cap(spare) > 64 {
			spare = nil // a backlog is over: give its memory back
		}
		if closing != nil {
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closing.closeCode, closing.closeReason), time.Now().Add(c.s.cfg.WriteTimeout))
			if closing.echo {
				return
			}
			// The client may answer the close until closeGrace has passed since it was queued.
			<-c.done
			return
		}
	}
}

// writeFrames writes frames with one system call: writev on a TCP connection, else one Write of
// the frames joined (fasthttp hands over hijacked connections wrapped, without writev).
func writeFrames(nc net.Conn, frames [][]byte, pool *sync.Pool) error {
	if len(frames) == 1 {
		_, err := nc.Write(frames[0])
		return err
	}
	if _, ok := nc.(*net.TCPConn); ok {
		bufs := net.Buffers(frames)
		_, err := bufs.WriteTo(nc)
		return err
	}
	b, _ := pool.Get().(*bytes.Buffer)
	if b == nil {
		b = new(bytes.Buffer)
	}
	defer pool.Put(b)
	b.Reset()
	for _, f := range frames {
		b.Write(f)
	}
	_, err := nc.Write(b.Bytes())
	return err
}

func (c *conn) readLoop() error {
	c.ws.SetReadLimit(maxFrame)
	deadline := func() { _ = c.ws.SetReadDeadline(time.Now().Add(2*c.s.cfg.PingInterval + 10*time.Second)) }
	deadline()
	c.ws.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		deadline()
		// Once the client is told to go, what it still sends is read (to see its close) and
		// dropped: a disconnected user must not post, delete or disconnect anyone.
		if c.closeQueued() {
			continue
		}
		// Every frame is charged before it is looked at: a malformed one costs an answer too.
		var req wire.Request
		var perr error
		parsed := false
		parse := func() {
			if !parsed && typ == websocket.TextMessage {
				req, perr = wire.ParseRequest(data)
			}
			parsed = true
		}
		if !c.charge(true, func() string { parse(); return req.RequestId }) {
			continue
		}
		if typ != websocket.TextMessage {
			c.fail("", codeBadRequest, "frames must be text")
			continue
		}
		parse()
		if perr != nil {
			c.fail(req.RequestId, codeBadRequest, perr.Error())
			continue
		}
		c.handle(req)
	}
}

// charge counts one client frame against the connection's budget and reports whether it may
// be served. Past the budget the frame is refused, with ERROR 429 when answer is set (matched
// to the request by requestID, so the SDK's promise settles). Every action costs the room
// something, so one connection may ask only so often, whatever its capabilities; a client
// still sending after ConnRequestBurst refusals in a row is not slowing down, and is closed
// with 1008, which the SDK takes as final.
func (c *conn) charge(answer bool, requestID func() string) bool {
	if c.closeQueued() {
		return false
	}
	if c.limiter.Allow() {
		c.strikes = 0
		return true
	}
	c.strikes++
	if c.strikes > c.s.cfg.ConnRequestBurst {
		c.s.log.Info("chat: disconnecting a client that keeps sending past its rate limit", "room", c.room.id, "user", c.claims.UserID, "ip", c.ip)
		c.closeWith(websocket.ClosePolicyViolation, "too many requests")
		return false
	}
	if answer {
		c.fail(requestID(), codeRateLimited, "too many requests on this connection")
	}
	return false
}

// closeQueued reports whether the connection was told to go.
func (c *conn) closeQueued() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing != nil
}

// fail sends an ERROR frame to this client; it rejects the request with that RequestId.
func (c *conn) fail(requestID string, code int, msg string) {
	c.enqueue(out{frame: textFrame(wire.Encode(wire.NewError(requestID, code, msg)))})
}

func (c *conn) handle(req wire.Request) {
	// The connection's budget was charged when the frame was read; the room's message rate is
	// checked on top.
	rm, ok := c.room.current()
	if !ok {
		c.fail(req.RequestId, codeNotFound, "room not found")
		return
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, 10*time.Second)
	defer cancel()
	switch req.Action {
	case wire.ActionSendMessage:
		c.sendMessage(ctx, req, rm.MaximumMessageLength, rm.MaximumMessageRatePerSecond, rm.MessageReviewHandler)
	case wire.ActionDeleteMessage:
		if !c.claims.Can(token.DeleteMessage) {
			c.fail(req.RequestId, codeForbidden, "the token lacks the DELETE_MESSAGE capability")
			return
		}
		if !reMessageID.MatchString(req.Id) {
			c.fail(req.RequestId, codeBadRequest, "Id must be a 12-character message id")
			return
		}
		if utf8.RuneCountInString(req.Reason) > 256 {
			c.fail(req.RequestId, codeTooLarge, "Reason must be at most 256 characters")
			return
		}
		ev := wire.NewDeleteEvent(req.RequestId, req.Id, req.Reason, time.Now())
		c.publish(ctx, req.RequestId, wire.Envelope{Kind: wire.KindFrame, FrameType: wire.TypeEvent, FrameID: ev.Id, Data: wire.Encode(ev)})
	case wire.ActionDisconnectUser:
		if !c.claims.Can(token.DisconnectUser) {
			c.fail(req.RequestId, codeForbidden, "the token lacks the DISCONNECT_USER capability")
			return
		}
		if n := utf8.RuneCountInString(req.UserId); n < 1 || n > 128 {
			c.fail(req.RequestId, codeBadRequest, "UserId must be 1 to 128 characters")
			return
		}
		if utf8.RuneCountInString(req.Reason) > 256 {
			c.fail(req.RequestId, codeTooLarge, "Reason must be at most 256 characters")
			return
		}
		ev := wire.NewDisconnectEvent(req.RequestId, req.UserId, req.Reason, time.Now())
		c.publish(ctx, req.RequestId, wire.Envelope{Kind: wire.KindDisconnect, FrameType: wire.TypeEvent, FrameID: ev.Id,
			User: req.UserId, Reason: req.Reason, Data: wire.Encode(ev)})
	default:
		c.fail(req.RequestId, codeBadRequest, "unknown Action: use SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER")
	}
}

func attributesBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

func (c *conn) sendMessage(ctx context.Context, req wire.Request, maxLen, maxRate int, handler *store.MessageReviewConfig) {
	if !c.claims.Can(token.SendMessage) {
		c.fail(req.RequestId, codeForbidden, "the token lacks the SEND_MESSAGE capability")
		return
	}
	if req.Content == nil || *req.Content == "" {
		c.fail(req.RequestId, codeBadRequest, "Content is required")
		return
	}
	content := *req.Content
	if !utf8.ValidString(content) {
		c.fail(req.RequestId, codeBadRequest, "Content must be UTF-8")
		return
	}
	if n := utf8.RuneCountInString(content); n > maxLen {
		c.fail(req.RequestId, codeTooLarge, fmt.Sprintf("Content has %d characters; this room allows at most %d", n, maxLen))
		return
	}
	if attributesBytes(req.Attributes) > 1024 {
		c.fail(req.RequestId, codeTooLarge, "Attributes may total at most 1 KB")
		return
	}
	now := time.Now()
	msg := wire.NewMessage(req.RequestId, content, req.Attributes, c.claims.UserID, c.claims.Attributes, now)
	if !c.room.rate.reserve(msg.Id, maxRate, now) {
		c.fail(req.RequestId, codeRateLimited, fmt.Sprintf("this room allows at most %d messages per second", maxRate))
		return
	}
	if handler != nil {
		res := c.s.reviewer.Review(ctx, handler.URI, handler.FallbackResult, review.Request{
			Content: content, MessageId: msg.Id, RoomArn: c.s.roomARN(c.room.id), Attributes: nonNil(req.Attributes),
			Sender: review.Sender{Attributes: nonNil(c.claims.Attributes), UserId: c.claims.UserID, Ip: c.ip}})
		if res.Fallback != nil {
			c.s.log.Warn("chat: message review failed; applying the fallback result", "room", c.room.id, "fallback", handler.FallbackResult, "err", res.Fallback)
		}
		if !res.Allow {
			c.room.rate.release(msg.Id)
			reason := res.Reason
			if reason == "" {
				reason = "the message was denied by the room's message review handler"
			}
			c.fail(req.RequestId, codeDenied, reason)
			return
		}
		msg.Content = res.Content
		msg.Attributes = res.Attributes
		if len(msg.Attributes) == 0 {
			msg.Attributes = nil
		}
		msg.SendTime = wire.FormatTime(time.Now())
	}
	if err := c.publish(ctx, req.RequestId, wire.Envelope{Kind: wire.KindFrame, FrameType: wire.TypeMessage, FrameID: msg.Id, Data: wire.Encode(msg)}); err != nil {
		c.room.rate.release(msg.Id)
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (c *conn) publish(ctx context.Context, requestID string, e wire.Envelope) error {
	// The close may have come while the request was being served (a review takes a while).
	if c.closeQueued() {
		return errClosing
	}
	if err := c.s.relay.Publish(ctx, c.room.id, e); err != nil {
		c.s.log.Error("chat: publishing failed", "room", c.room.id, "err", err)
		c.fail(requestID, codeInternalError, "internal error")
		return err
	}
	return nil
}
