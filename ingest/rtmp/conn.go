package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"glasscast/ingest"
	"glasscast/metrics"
	"glasscast/store"
)

const (
	// preAuthBudget bounds what a client may send before its stream key is accepted, so an
	// unauthenticated peer cannot make the server buffer large messages.
	preAuthBudget = 64 << 10
	// readTimeout disconnects a publisher that sends nothing for this long.
	readTimeout = 10 * time.Second
)

// errRefused marks a publish refused for a reason worth logging at warn level.
type errRefused struct{ reason string }

func (e errRefused) Error() string { return "publish refused: " + e.reason }

// handle serves one accepted connection; pc is its place in the pending pool, which it leaves
// when it returns or becomes a publisher.
func (s *Server) handle(ctx context.Context, nc net.Conn, pc *pendingConn, secure bool) {
	defer nc.Close()
	defer s.adm.done(pc)
	accepted := time.Now()
	log := s.log.With("remote", nc.RemoteAddr().String(), "secure", secure)
	conn := newBudgetConn(nc, preAuthBudget)
	// One deadline for the TLS handshake, RTMP's handshake, connect and publish: a peer that
	// dawdles holds a pending slot for no longer than this.
	_ = nc.SetDeadline(accepted.Add(s.cfg.HandshakeTimeout))

	sc := &gortmplib.ServerConn{RW: conn}
	if err := sc.Initialize(); err != nil {
		s.handshakeFailed(log, "rtmp handshake failed", err, accepted)
		return
	}
	if err := sc.AcceptConn(); err != nil {
		s.handshakeFailed(log, "rtmp connect failed", err, accepted)
		return
	}
	if !sc.Publish {
		log.Warn("rtmp play refused: Glasscast serves playback over HLS only")
		_ = sc.RejectAction()
		return
	}
	ch, keyID, err := s.authorize(sc.URL.Path, secure)
	if err != nil {
		log.Warn("rtmp publish refused", "reason", err.Error())
		_ = sc.RejectAction()
		return
	}
	log = log.With("channel", ch.ID, "streamKey", keyID)
	if ok, full := s.adm.promote(pc); !ok {
		if full {
			log.Warn("rtmp publish refused", "reason", "too many publishers", "maxPublishers", s.cfg.MaxPublishers)
			_ = sc.RejectAction()
		}
		return // else evicted from the pending pool: its socket is closed already
	}
	defer s.adm.leave()
	sess, err := s.in.Attach(ctx, ingest.Publisher{Channel: ch, Close: func() { nc.Close() }, Log: log})
	if err != nil {
		log.Warn("rtmp publish refused", "reason", err.Error())
		_ = sc.RejectAction()
		return
	}
	if err := sc.AcceptAction(); err != nil {
		sess.Detach(ctx, err)
		return
	}
	conn.budget = -1
	_ = nc.SetDeadline(time.Time{})
	log.Info("publisher connected", "stream", sess.StreamID(), "handshake", time.Since(accepted).Round(time.Millisecond))
	p := &publisher{s: sess, conn: nc, rtmp: sc, log: log}
	err = p.run(ctx)
	log.Info("publisher disconnected", "stream", sess.StreamID(), "reason", errString(err))
	sess.Detach(ctx, err)
}

// handshakeFailed logs a connection that ended before it published. Those cut by the
// handshake deadline are also counted and reported now and then: under a flood idle sockets
// are cut all the time, but a real publisher whose link or machine is too slow for
// ingest.handshakeTimeout must show up in the log too.
func (s *Server) handshakeFailed(log *slog.Logger, msg string, err error, accepted time.Time) {
	log.Debug(msg, "err", err)
	if time.Since(accepted) >= s.cfg.HandshakeTimeout {
		n := s.timeouts.Add(1)
		if s.timeoutWarn.Allow() {
			s.log.Warn("rtmp: connections cut by the handshake deadline before publishing (raise ingest.handshakeTimeout if real publishers are among them)",
				"total", n, "handshakeTimeout", s.cfg.HandshakeTimeout)
		}
	}
}

func errString(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "closed by publisher"
	}
	return err.Error()
}

// authorize checks the stream key in an RTMP path "/app/<key>" and returns its channel. The
// key itself never reaches a log; the key's ID does.
func (s *Server) authorize(path string, secure bool) (store.Channel, string, error) {
	rest, ok := strings.CutPrefix(path, "/app/")
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return store.Channel{}, "", errRefused{"path is not /app/<stream key>"}
	}
	return s.in.Authorize(rest, secure)
}

// budgetConn bounds what a client may make the server read and allocate before publishing: it
// fails reads once a byte budget is spent (a negative budget is unlimited), and its guard
// stops at a chunk the budget could never deliver, before the library allocates its body.
type budgetConn struct {
	net.Conn
	budget int
	guard  *chunkGuard
	// held are bytes read past the guard's stop. The library asking for them before the
	// budget is lifted means it is reading that chunk; after, they are simply the stream.
	held []byte
}

func newBudgetConn(c net.Conn, budget int) *budgetConn {
	return &budgetConn{Conn: c, budget: budget, guard: newChunkGuard(budget)}
}

func (c *budgetConn) Read(p []byte) (int, error) {
	if c.budget < 0 && len(c.held) > 0 {
		n := copy(p, c.held)
		c.held = c.held[n:]
		return n, nil
	}
	if c.budget < 0 {
		return c.Conn.Read(p)
	}
	if len(c.held) > 0 {
		return 0, errChunkPastBudget(preAuthBudget)
	}
	if c.budget == 0 {
		return 0, fmt.Errorf("client sent more than %d bytes before publishing", preAuthBudget)
	}
	if len(p) > c.budget {
		p = p[:c.budget]
	}
	n, err := c.Conn.Read(p)
	c.budget -= n
	pass, gerr := c.guard.scan(p[:n])
	if gerr != nil {
		return 0, gerr
	}
	if pass < n {
		c.held = append([]byte(nil), p[pass:n]...)
		if pass == 0 {
			return 0, errChunkPastBudget(preAuthBudget)
		}
		return pass, nil
	}
	return n, err
}

// tapConn passes messages to the RTMP reader and shows it data messages first: onMetaData
// describes the encoder, onTextData and onCuePoint carry in-band timed metadata.
type tapConn struct {
	gortmplib.Conn
	onData  func(name string, args []any)
	onMedia func(dts time.Duration) // every audio or video message, as it arrives
	meter   metrics.IngestMeter     // counts bytes, frames and key frames
}

func (t *tapConn) Read() (message.Message, error) {
	msg, err := t.Conn.Read()
	switch m := msg.(type) {
	case *message.Video:
		t.onMedia(m.DTS)
	case *message.Audio:
		t.onMedia(m.DTS)
	case *message.VideoExCodedFrames:
		t.onMedia(m.DTS)
	case *message.VideoExFramesX:
		t.onMedia(m.DTS)
	case *message.AudioExCodedFrames:
		t.onMedia(m.DTS)
	}
	if t.meter != nil && err == nil {
		switch m := msg.(type) {
		case *message.Video:
			if m.Type == message.VideoTypeAU {
				t.meter.Video(len(m.AU), m.IsKeyFrame, m.DTS)
			}
		case *message.VideoExCodedFrames:
			t.meter.Video(len(m.Payload), false, m.DTS)
		case *message.VideoExFramesX:
			t.meter.Video(len(m.Payload), false, m.DTS)
		case *message.Audio:
			if m.Codec != message.CodecMPEG4Audio || m.AACType == message.AudioAACTypeAU {
				t.meter.Audio(len(m.AU))
			}
		case *message.AudioExCodedFrames:
			t.meter.Audio(len(m.Payload))
		}
	}
	if d, ok := msg.(*message.DataAMF0); ok && err == nil {
		args := []any(d.Payload)
		// "@setDataFrame" wraps onMetaData when it is set by the publisher.
		if len(args) > 0 && args[0] == "@setDataFrame" {
			args = args[1:]
		}
		if len(args) > 0 {
			if name, ok := args[0].(string); ok {
				t.onData(name, args[1:])
			}
		}
	}
	return msg, err
}

// amfObject turns an AMF0 object or ECMA array into a map.
func amfObject(v any) map[string]any {
	out := map[string]any{}
	switch o := v.(type) {
	case amf0.Object:
		for _, kv := range o {
			out[kv.Key] = kv.Value
		}
	case amf0.ECMAArray:
		for _, kv := range o {
			out[kv.Key] = kv.Value
		}
	}
	return out
}
