package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"glasscast/ingest"
)

const (
	// readTimeout disconnects a publisher whose connection stays up (keepalives) but that
	// sends no media for this long, as RTMP's read timeout does.
	readTimeout = 10 * time.Second
	// tsBase is added to every decoded timestamp: the first one decodes to zero, and a frame of
	// the other track may come a little before it.
	tsBase = time.Second
)

// publisher is one SRT connection feeding its session.
type publisher struct {
	s            *ingest.Session
	conn         gosrt.Conn
	log          *slog.Logger
	startTimeout time.Duration

	td      mpegts.TimeDecoder
	started bool
	video   mp4codecs.Codec // once the parameter sets are known
	audio   mp4codecs.Codec
	params  [3][]byte // VPS (H.265), SPS, PPS seen so far, until the session starts
	decodeE int       // decode errors since the last warning
	warned  time.Time

	decodeErrors int       // in all
	readAt       time.Time // when the tracks were read
	src          *watchdog
	last         *atomic.Int64 // when data last arrived (Unix nanoseconds), for a takeover
}

// watchdog closes the connection when no data arrives for a while: gosrt's read deadlines
// do nothing, and keepalives keep its peer idle timeout from firing.
type watchdog struct {
	r io.Reader
	t *time.Timer
	d time.Duration
	// ended is set once the connection has ended. At its end the MPEG-TS demuxer hands over
	// the PES it still holds, and a video PES (of unbounded length) ends only where the next
	// begins: the last one is whatever arrived before the connection went (libsrt drops what
	// is still unsent when ffmpeg closes), a frame cut short that players fail to decode.
	// What comes after the end is not written.
	ended bool
	last  *atomic.Int64 // when data last arrived, in Unix nanoseconds
}

func (w *watchdog) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	if n > 0 {
		w.t.Reset(w.d)
		w.last.Store(time.Now().UnixNano())
	}
	if err != nil {
		w.ended = true
	}
	return n, err
}

// ts converts a 90 kHz MPEG-TS timestamp (33 bits, wrapping) to the stream's timeline.
func (p *publisher) ts(v int64) time.Duration {
	d := p.td.Decode(v)
	return tsBase + time.Duration(d/90000)*time.Second + time.Duration(d%90000)*time.Second/90000
}

func (p *publisher) run(ctx context.Context) error {
	var timedOut atomic.Bool
	wd := &watchdog{r: p.conn, d: p.startTimeout, last: p.last}
	p.src = wd
	wd.t = time.AfterFunc(p.startTimeout, func() {
		timedOut.Store(true)
		p.conn.Close()
	})
	defer wd.t.Stop()
	r := newTSReader(wd, maxPES)
	if err := r.Initialize(); err != nil {
		if timedOut.Load() {
			return fmt.Errorf("no MPEG-TS program within %v", p.startTimeout)
		}
		return fmt.Errorf("read MPEG-TS tracks: %w", err)
	}
	wd.d = readTimeout
	p.readAt = time.Now()
	r.OnDecodeError(func(err error) {
		// A lost packet the link did not recover shows up here; it costs a frame, not the stream.
		p.decodeE++
		p.decodeErrors++
		if now := time.Now(); now.Sub(p.warned) >= 10*time.Second {
			p.log.Warn("MPEG-TS decode errors", "count", p.decodeE, "last", err.Error())
			p.warned, p.decodeE = now, 0
		}
	})
	var videoTrack, audioTrack *mpegts.Track
	for _, t := range r.Tracks() {
		switch c := t.Codec.(type) {
		case *tscodecs.H264:
			if videoTrack == nil {
				videoTrack, p.video = t, &mp4codecs.H264{}
			}
		case *tscodecs.H265:
			if videoTrack == nil {
				videoTrack, p.video = t, &mp4codecs.H265{}
			}
		case *tscodecs.MPEG4Audio:
			if audioTrack == nil {
				audioTrack, p.audio = t, &mp4codecs.MPEG4Audio{Config: c.Config}
			}
		case *tscodecs.Opus:
			if audioTrack == nil {
				n := c.ChannelCount //nolint:staticcheck // Desc is nil for some muxers
				if c.Desc != nil {
					n = c.Desc.ChannelCount()
				}
				audioTrack, p.audio = t, &mp4codecs.Opus{ChannelCount: n}
			}
		default:
			p.log.Warn("ignoring track with unsupported codec", "codec", fmt.Sprintf("%T", c))
		}
	}
	if videoTrack == nil && audioTrack == nil {
		return errors.New("no supported track (H.264, H.265, AAC or Opus)")
	}
	meter := p.s.Meter()
	switch p.video.(type) {
	case *mp4codecs.H264:
		r.OnDataH264(videoTrack, func(pts, dts int64, au [][]byte) error {
			key := h264.IsRandomAccess(au)
			return p.writeVideo(ctx, pts, dts, au, key, func(pts, dts time.Duration) error {
				meter.Video(auSize(au), key, dts)
				return p.s.WriteH264(ctx, pts, dts, au)
			})
		})
	case *mp4codecs.H265:
		r.OnDataH265(videoTrack, func(pts, dts int64, au [][]byte) error {
			key := h265.IsRandomAccess(au)
			return p.writeVideo(ctx, pts, dts, au, key, func(pts, dts time.Duration) error {
				meter.Video(auSize(au), key, dts)
				return p.s.WriteH265(ctx, pts, dts, au)
			})
		})
	}
	switch p.audio.(type) {
	case *mp4codecs.MPEG4Audio:
		sampleRate := p.audio.(*mp4codecs.MPEG4Audio).Config.SampleRate
		r.OnDataMPEG4Audio(audioTrack, func(pts int64, aus [][]byte) error {
			if p.src.ended {
				return nil
			}
			t := p.ts(pts)
			if ok, err := p.audioStarts(ctx, videoTrack == nil); !ok {
				return err // nil while the video's first key frame has not come
			}
			for i, au := range aus {
				// One PES may carry several ADTS frames of 1024 samples each.
				at := t + time.Duration(i)*1024*time.Second/time.Duration(max(sampleRate, 1))
				meter.Audio(len(au))
				if err := p.s.WriteMPEG4Audio(ctx, at, au); err != nil {
					return err
				}
			}
			return nil
		})
	case *mp4codecs.Opus:
		r.OnDataOpus(audioTrack, func(pts int64, packets [][]byte) error {
			if p.src.ended {
				return nil
			}
			t := p.ts(pts)
			if ok, err := p.audioStarts(ctx, videoTrack == nil); !ok {
				return err
			}
			for _, pkt := range packets {
				meter.Audio(len(pkt))
				if err := p.s.WriteOpus(ctx, t, pkt); err != nil {
					return err
				}
				// The packets of one PES follow each other.
				t += time.Duration(opus.PacketDuration2(pkt)) * time.Second / 48000
			}
			return nil
		})
	}
	for {
		if err := r.Read(); err != nil {
			if timedOut.Load() {
				return fmt.Errorf("no data for %v", wd.d)
			}
			return err
		}
	}
}

func auSize(au [][]byte) int {
	n := 0
	for _, nalu := range au {
		n += len(nalu)
	}
	return n
}

// writeVideo starts the session at the first key frame whose parameter sets are known (so
// that the session describes the video, and the packager starts clean), then writes.
func (p *publisher) writeVideo(ctx context.Context, pts, dts int64, au [][]byte, key bool, write func(pts, dts time.Duration) error) error {
	if p.src.ended {
		return nil
	}
	// Both timestamps go through the one decoder, DTS first: it is the earlier.
	d := p.ts(dts)
	t := p.ts(pts)
	if !p.started {
		p.noteParams(au)
		if !key || !p.paramsComplete() {
			return p.checkStart()
		}
		switch v := p.video.(type) {
		case *mp4codecs.H264:
			v.SPS, v.PPS = p.params[1], p.params[2]
		case *mp4codecs.H265:
			v.VPS, v.SPS, v.PPS = p.params[0], p.params[1], p.params[2]
		}
		if err := p.start(ctx); err != nil {
			return err
		}
	}
	return write(t, d)
}

func (p *publisher) start(ctx context.Context) error {
	if err := p.s.Start(ctx, ingest.Tracks{Video: p.video, Audio: p.audio}); err != nil {
		return err
	}
	p.started = true
	return nil
}

// audioStarts reports whether an audio frame is to be written: an audio-only stream starts at
// its first frame; with video, audio waits for the video's first key frame.
func (p *publisher) audioStarts(ctx context.Context, audioOnly bool) (bool, error) {
	switch {
	case p.started:
		return true, nil
	case !audioOnly:
		return false, p.checkStart()
	}
	if err := p.start(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// checkStart fails a stream that sends data but no key frame with its parameter sets in time.
func (p *publisher) checkStart() error {
	if time.Since(p.readAt) > p.startTimeout {
		return fmt.Errorf("no key frame with its parameter sets within %v", p.startTimeout)
	}
	return nil
}

func (p *publisher) noteParams(au [][]byte) {
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		i := -1
		if _, ok := p.video.(*mp4codecs.H265); ok {
			switch h265.NALUType(nalu[0] >> 1 & 0x3f) {
			case h265.NALUType_VPS_NUT:
				i = 0
			case h265.NALUType_SPS_NUT:
				i = 1
			case h265.NALUType_PPS_NUT:
				i = 2
			}
		} else {
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				i = 1
			case h264.NALUTypePPS:
				i = 2
			}
		}
		if i >= 0 {
			p.params[i] = append([]byte(nil), nalu...)
		}
	}
}

func (p *publisher) paramsComplete() bool {
	if _, ok := p.video.(*mp4codecs.H265); ok && p.params[0] == nil {
		return false
	}
	return p.params[1] != nil && p.params[2] != nil
}
