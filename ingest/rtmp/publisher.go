package rtmp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/ingest"
)

// publisher is one RTMP connection feeding its session.
type publisher struct {
	s    *ingest.Session
	conn net.Conn
	rtmp *gortmplib.ServerConn
	log  *slog.Logger

	metadata map[string]any // onMetaData, for the session's ingest configuration (reader goroutine only)
}

func (p *publisher) run(ctx context.Context) error {
	tap := &tapConn{Conn: p.rtmp, onData: p.onData, onMedia: p.s.Arrived, meter: p.s.Meter()}
	analysis := newAnalysisConn(tap)
	r := &gortmplib.Reader{Conn: analysis}
	_ = p.conn.SetReadDeadline(time.Now().Add(readTimeout))
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("read tracks: %w", err)
	}
	if analysis.done {
		r.Conn = &skipConn{Conn: r.Conn, skip: analysis.synthetic}
	}
	var video, audio mp4codecs.Codec
	var videoTrack, audioTrack *gortmplib.Track
	for _, t := range r.Tracks() {
		switch c := t.Codec.(type) {
		case *rtmpcodecs.H264:
			if video == nil {
				video, videoTrack = &mp4codecs.H264{SPS: c.SPS, PPS: c.PPS}, t
			}
		case *rtmpcodecs.H265:
			if video == nil {
				video, videoTrack = &mp4codecs.H265{VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}, t
			}
		case *rtmpcodecs.MPEG4Audio:
			if audio == nil && c.Config != nil {
				audio, audioTrack = &mp4codecs.MPEG4Audio{Config: *c.Config}, t
			}
		case *rtmpcodecs.Opus:
			if audio == nil && c.IDHeader != nil {
				audio, audioTrack = &mp4codecs.Opus{ChannelCount: int(c.IDHeader.ChannelCount)}, t
			}
		}
	}
	for _, t := range r.Tracks() {
		if t == videoTrack || t == audioTrack {
			continue
		}
		if err := ignore(r, t); err != nil {
			return err
		}
		p.log.Warn("ignoring rtmp track: its codec is not supported, or a track of its kind is already in use", "codec", fmt.Sprintf("%T", t.Codec))
	}
	if err := p.s.Start(ctx, ingest.Tracks{Video: video, Audio: audio, Encoder: encoder(p.metadata)}); err != nil {
		return err
	}

	// The reader's callbacks cannot return errors; the first one stops the loop.
	var werr error
	fail := func(err error) {
		if err != nil && werr == nil {
			werr = err
		}
	}
	switch video.(type) {
	case *mp4codecs.H264:
		r.OnDataH264(videoTrack, func(pts, dts time.Duration, au [][]byte) {
			fail(p.s.WriteH264(ctx, pts, dts, au))
		})
	case *mp4codecs.H265:
		r.OnDataH265(videoTrack, func(pts, dts time.Duration, au [][]byte) {
			fail(p.s.WriteH265(ctx, pts, dts, au))
		})
	}
	switch audio.(type) {
	case *mp4codecs.MPEG4Audio:
		r.OnDataMPEG4Audio(audioTrack, func(pts time.Duration, au []byte) {
			fail(p.s.WriteMPEG4Audio(ctx, pts, au))
		})
	case *mp4codecs.Opus:
		r.OnDataOpus(audioTrack, func(pts time.Duration, packet []byte) {
			fail(p.s.WriteOpus(ctx, pts, packet))
		})
	}
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(readTimeout))
		if err := r.Read(); err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
	}
}

// ignore makes the reader drop the data of a track the session does not take. The reader calls
// a track's callback without checking that one is set, so a track left without one (ffmpeg's
// default FLV audio is MP3) would panic on its first frame and take the process down.
func ignore(r *gortmplib.Reader, t *gortmplib.Track) error {
	switch t.Codec.(type) {
	case *rtmpcodecs.H264:
		r.OnDataH264(t, func(time.Duration, time.Duration, [][]byte) {})
	case *rtmpcodecs.H265:
		r.OnDataH265(t, func(time.Duration, time.Duration, [][]byte) {})
	case *rtmpcodecs.AV1:
		r.OnDataAV1(t, func(time.Duration, [][]byte) {})
	case *rtmpcodecs.VP9:
		r.OnDataVP9(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.MPEG4Audio:
		r.OnDataMPEG4Audio(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.Opus:
		r.OnDataOpus(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.MPEG1Audio:
		r.OnDataMPEG1Audio(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.AC3:
		r.OnDataAC3(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.FLAC:
		r.OnDataFLAC(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.G711:
		r.OnDataG711(t, func(time.Duration, []byte) {})
	case *rtmpcodecs.LPCM:
		r.OnDataLPCM(t, func(time.Duration, []byte) {})
	default:
		// A codec added to a newer gortmplib: refusing the publish beats a panic.
		return fmt.Errorf("rtmp track with codec %T cannot be ignored", t.Codec)
	}
	return nil
}

// onData handles AMF data messages: the encoder description and in-band timed metadata.
// The session applies PutMetadata's rules to in-band cues and logs what it drops.
func (p *publisher) onData(name string, args []any) {
	switch name {
	case "onMetaData":
		if len(args) > 0 {
			p.metadata = amfObject(args[0])
		}
	case "onTextData", "onCuePoint":
		if text := inbandText(name, args); text != "" {
			_ = p.s.AddCue(text)
		}
	}
}

// encoder reads the encoder's description from onMetaData.
func encoder(meta map[string]any) ingest.Encoder {
	num := func(k string) int64 {
		if f, ok := meta[k].(float64); ok {
			return int64(f)
		}
		return 0
	}
	e := ingest.Encoder{VideoBitrate: num("videodatarate") * 1000, AudioBitrate: num("audiodatarate") * 1000,
		Width: num("width"), Height: num("height"), FrameRate: num("framerate")}
	if enc, ok := meta["encoder"].(string); ok {
		e.Name = enc
	}
	return e
}

// inbandText renders an onTextData/onCuePoint payload as the cue text: the "text" member of
// onTextData as is, anything else as JSON.
func inbandText(name string, args []any) string {
	if len(args) == 0 {
		return ""
	}
	obj := amfObject(args[0])
	if name == "onTextData" {
		if t, ok := obj["text"].(string); ok {
			return t
		}
	}
	if len(obj) == 0 {
		if s, ok := args[0].(string); ok {
			return s
		}
		return ""
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return ""
	}
	return string(b) // the caller checks its size
}
