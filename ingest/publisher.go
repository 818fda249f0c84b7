package ingest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/ingest/transcode"
	"glasscast/media"
	"glasscast/metadata"
	"glasscast/store"
)

// maxPendingCues bounds the timed metadata held while a publisher's packager does not exist
// yet (its tracks are still being read); past it the oldest cue is dropped.
const maxPendingCues = 16

// publisher is one RTMP connection feeding a broadcast.
type publisher struct {
	b    *broadcast
	conn net.Conn
	rtmp *gortmplib.ServerConn
	log  *slog.Logger

	mu       sync.Mutex
	pipe     pipeline
	metadata map[string]any // onMetaData, for the session's ingest configuration
	pending  []media.Cue    // cues that arrived before the packager existed, at most maxPendingCues

	// In-band metadata dropped since the last warning; touched only by the reading goroutine.
	inbandDrops    int
	inbandWarnedAt time.Time

	// The program-date-time clock maps a timestamp to the wall clock as origin + dts, where
	// origin is the earliest (arrival - dts) seen: frames that arrive late (a slow start,
	// gortmplib reading ahead while it detects tracks and replaying later) do not push the
	// clock into the future. Touched only by the reading goroutine.
	clockOrigin time.Time
	curDTS      time.Duration // timestamp of the frame being packaged
}

// onMedia notes when each media message arrives.
func (p *publisher) onMedia(dts time.Duration) {
	if o := time.Now().Add(-dts); p.clockOrigin.IsZero() || o.Before(p.clockOrigin) {
		p.clockOrigin = o
	}
}

// mediaClock tells the packager the wall-clock time of the frame it is packaging.
func (p *publisher) mediaClock() time.Time {
	if p.clockOrigin.IsZero() {
		return time.Now()
	}
	return p.clockOrigin.Add(p.curDTS)
}

// pipeline packages a publisher's stream: a packager for BASIC channels, a transcoding ladder
// (transcode.Ladder) for the others.
type pipeline interface {
	WriteH264(pts, dts time.Duration, au [][]byte) error
	WriteH265(pts, dts time.Duration, au [][]byte) error
	WriteMPEG4Audio(pts time.Duration, au []byte) error
	WriteOpus(pts time.Duration, packet []byte) error
	AddCue(c media.Cue)
	Close() error
}

// starving reports a transcoder that falls behind real time.
func (p *publisher) starving() bool {
	p.mu.Lock()
	l, ok := p.pipe.(*transcode.Ladder)
	p.mu.Unlock()
	return ok && l.Starving()
}

// close disconnects the publisher (StopStream, shutdown).
func (p *publisher) close() { p.conn.Close() }

func (p *publisher) run() error {
	tap := &tapConn{Conn: p.rtmp, onData: p.onData, onMedia: p.onMedia, meter: p.b.meter}
	r := &gortmplib.Reader{Conn: tap}
	_ = p.conn.SetReadDeadline(time.Now().Add(readTimeout))
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("read tracks: %w", err)
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
		default:
			p.log.Warn("ignoring track with unsupported codec", "codec", fmt.Sprintf("%T", c))
		}
	}
	if video == nil && audio == nil {
		return errRefused{"no supported track (H.264, H.265, AAC or Opus)"}
	}
	p.mu.Lock()
	meta := p.metadata
	p.mu.Unlock()
	p.b.describeIngest(ingestConfig(video, audio, meta))

	pkg, err := p.b.newPipeline(video, audio, p.mediaClock)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.pipe = pkg
	for _, c := range p.pending {
		pkg.AddCue(c)
	}
	p.pending = nil
	p.mu.Unlock()
	defer func() {
		if err := pkg.Close(); err != nil {
			p.log.Warn("flush last part", "err", err)
		}
		p.b.keepState(pkg)
	}()

	// The reader's callbacks cannot return errors; the first one stops the loop.
	var werr error
	fail := func(err error) {
		if err != nil && werr == nil {
			werr = err
		}
	}
	observe := func(dts time.Duration) {
		p.curDTS = dts
		p.b.health.observe(time.Now(), dts)
	}
	switch video.(type) {
	case *mp4codecs.H264:
		r.OnDataH264(videoTrack, func(pts, dts time.Duration, au [][]byte) {
			observe(dts)
			fail(pkg.WriteH264(pts, dts, au))
		})
	case *mp4codecs.H265:
		r.OnDataH265(videoTrack, func(pts, dts time.Duration, au [][]byte) {
			observe(dts)
			fail(pkg.WriteH265(pts, dts, au))
		})
	}
	switch audio.(type) {
	case *mp4codecs.MPEG4Audio:
		r.OnDataMPEG4Audio(audioTrack, func(pts time.Duration, au []byte) {
			if video == nil {
				observe(pts)
			}
			fail(pkg.WriteMPEG4Audio(pts, au))
		})
	case *mp4codecs.Opus:
		r.OnDataOpus(audioTrack, func(pts time.Duration, packet []byte) {
			if video == nil {
				observe(pts)
			}
			fail(pkg.WriteOpus(pts, packet))
		})
	}
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(readTimeout))
		if err := r.Read(); err != nil {
			return err
		}
		if werr != nil {
			return fmt.Errorf("package: %w", werr)
		}
	}
}

// onData handles AMF data messages: the encoder description and in-band timed metadata.
func (p *publisher) onData(name string, args []any) {
	switch name {
	case "onMetaData":
		if len(args) > 0 {
			p.mu.Lock()
			p.metadata = amfObject(args[0])
			p.mu.Unlock()
		}
	case "onTextData", "onCuePoint":
		text := inbandText(name, args)
		if text == "" {
			return
		}
		// The publisher's metadata obeys PutMetadata's rules and shares its budget: a channel
		// takes 5 cues a second, however they arrive.
		if err := metadata.Check(text); err != nil {
			p.dropInband(name, err.Error())
			return
		}
		if !p.b.limiter.Allow() {
			p.dropInband(name, fmt.Sprintf("more than %v timed metadata cues per second on the channel", p.b.limiter.Limit()))
			return
		}
		p.addCue(text)
	}
}

// dropInband warns about in-band metadata that breaks the rules, at most once a second, so a
// publisher that floods them cannot flood the log too.
func (p *publisher) dropInband(name, reason string) {
	p.inbandDrops++
	if now := time.Now(); now.Sub(p.inbandWarnedAt) >= time.Second {
		p.log.Warn("in-band timed metadata dropped", "message", name, "reason", reason, "dropped", p.inbandDrops)
		p.inbandWarnedAt, p.inbandDrops = now, 0
	}
}

// addCue puts timed metadata (in-band or from PutMetadata) into the next part of every
// rendition, or holds it until the pipeline exists.
func (p *publisher) addCue(text string) { p.queueCue(p.b.newCue(text)) }

// queueCue queues a prepared cue (timed metadata or an ad break) for every rendition.
func (p *publisher) queueCue(c media.Cue) {
	p.mu.Lock()
	if p.pipe != nil {
		p.pipe.AddCue(c)
	} else {
		if len(p.pending) >= maxPendingCues {
			p.log.Warn("timed metadata dropped: too many cues wait for the stream's tracks", "max", maxPendingCues, "dropped", p.pending[0].ID)
			p.pending = slices.Delete(p.pending, 0, 1)
		}
		p.pending = append(p.pending, c)
	}
	p.mu.Unlock()
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

// ingestConfig describes the input as GetStreamSession reports it.
func ingestConfig(video, audio mp4codecs.Codec, meta map[string]any) *store.IngestConfig {
	num := func(k string) int64 {
		if f, ok := meta[k].(float64); ok {
			return int64(f)
		}
		return 0
	}
	ic := &store.IngestConfig{}
	if video != nil {
		v := &store.VideoConfig{TargetBitrate: num("videodatarate") * 1000, TargetFramerate: num("framerate"),
			Width: num("width"), Height: num("height")}
		if enc, ok := meta["encoder"].(string); ok {
			v.Encoder = enc
		}
		describeVideo(video, v)
		ic.Video = v
	}
	if audio != nil {
		a := &store.AudioConfig{TargetBitrate: num("audiodatarate") * 1000}
		switch c := audio.(type) {
		case *mp4codecs.MPEG4Audio:
			a.Codec = fmt.Sprintf("mp4a.40.%d", c.Config.Type)
			a.SampleRate = int64(c.Config.SampleRate)
			a.Channels = int64(c.Config.ChannelCount)
		case *mp4codecs.Opus:
			a.Codec, a.SampleRate, a.Channels = "opus", 48000, int64(c.ChannelCount)
		}
		ic.Audio = a
	}
	return ic
}
