package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"glasscast/metrics"
	"glasscast/store"
)

const (
	// preAuthBudget bounds what a client may send before its stream key is accepted, so an
	// unauthenticated peer cannot make the server buffer large messages.
	preAuthBudget = 64 << 10
	// handshakeTimeout bounds the time from TCP accept to an accepted publish.
	handshakeTimeout = 10 * time.Second
	// readTimeout disconnects a publisher that sends nothing for this long.
	readTimeout = 10 * time.Second
)

// errRefused marks a publish refused for a reason worth logging at warn level.
type errRefused struct{ reason string }

func (e errRefused) Error() string { return "publish refused: " + e.reason }

func (s *Server) handle(ctx context.Context, nc net.Conn, secure bool) {
	defer nc.Close()
	log := s.log.With("remote", nc.RemoteAddr().String(), "secure", secure)
	conn := &budgetConn{Conn: nc, budget: preAuthBudget}
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))

	sc := &gortmplib.ServerConn{RW: conn}
	if err := sc.Initialize(); err != nil {
		log.Debug("rtmp handshake failed", "err", err)
		return
	}
	if err := sc.AcceptConn(); err != nil {
		log.Debug("rtmp connect failed", "err", err)
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
	b, err := s.attach(ctx, ch)
	if err != nil {
		log.Warn("rtmp publish refused", "reason", err.Error())
		_ = sc.RejectAction()
		return
	}
	if err := sc.AcceptAction(); err != nil {
		b.detach(nil, err)
		return
	}
	conn.budget = -1
	_ = nc.SetDeadline(time.Time{})
	log.Info("publisher connected", "stream", b.streamID)
	p := &publisher{b: b, conn: nc, rtmp: sc, log: log}
	b.setPublisher(p)
	err = p.run()
	log.Info("publisher disconnected", "stream", b.streamID, "reason", errString(err))
	b.detach(p, err)
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
	keyID, ok := s.store.StreamKeyValues.Get(s.store.StreamKeyDigest(rest))
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
		return store.Channel{}, keyID, errRefused{"channel accepts RTMPS only (insecureIngest is false)"}
	}
	return ch, keyID, nil
}

// budgetConn fails reads once a byte budget is spent; a negative budget is unlimited.
type budgetConn struct {
	net.Conn
	budget int
}

func (c *budgetConn) Read(p []byte) (int, error) {
	if c.budget == 0 {
		return 0, fmt.Errorf("client sent more than %d bytes before publishing", preAuthBudget)
	}
	if c.budget > 0 && len(p) > c.budget {
		p = p[:c.budget]
	}
	n, err := c.Conn.Read(p)
	if c.budget > 0 {
		c.budget -= n
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
