package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/ingest/transcode"
	"glasscast/media"
	"glasscast/metadata"
	"glasscast/metrics"
	"glasscast/store"
)

// maxPendingCues bounds the timed metadata held while a publisher's packager does not exist
// yet (its tracks are still being read); past it the oldest cue is dropped.
const maxPendingCues = 16

// flushTimeout bounds the flush of a publisher's last part once its connection is gone. A
// ladder's ffmpeg gets up to half of it to drain (see transcode.Ladder.Close): 6 s, its MaxLag
// plus the gate's margin by default, and the rest is left for the flush.
const flushTimeout = 15 * time.Second

// ErrPublisherEnded is what a protocol passes to Session.Detach when its publisher ended the
// broadcast explicitly (WHIP's DELETE): the stream ends at once instead of waiting the
// reconnect grace, which is for connections that broke.
var ErrPublisherEnded = errors.New("the publisher ended the broadcast")

// Publisher describes a protocol connection that publishes to a channel.
type Publisher struct {
	// Channel is the channel its stream key authorized (Server.Authorize).
	Channel store.Channel
	// Close disconnects the publisher (StopStream, shutdown); the protocol then sees its
	// connection end and calls Session.Detach. It may be called more than once.
	Close func()
	// Log is the connection's logger (its remote address, channel, key ID).
	Log *slog.Logger
}

// Tracks are what a publisher sends.
type Tracks struct {
	// Video is *codecs.H264, *codecs.H265 or nil; parameter sets may be empty and arrive in
	// band. Audio is *codecs.MPEG4Audio, *codecs.Opus or nil. One of them is set.
	Video, Audio mp4codecs.Codec
	// Encoder is what the encoder said about itself, if anything.
	Encoder Encoder
}

// Encoder is an encoder's description of its output (RTMP's onMetaData), for the session's
// ingest configuration. Zero values are unknown; the size and frame rate then come from the
// parameter sets.
type Encoder struct {
	Name                       string
	VideoBitrate, AudioBitrate int64 // bits per second
	Width, Height, FrameRate   int64
	// SentVideo and SentAudio name the codecs the publisher sends where the ingest converts
	// them before packaging (WHIP's VP8, VP9 and Opus): GetStreamSession reports what came in.
	// Empty when the tracks pass through.
	SentVideo, SentAudio string
}

// Session is one publisher's connection to its channel's broadcast, from Server.Attach to
// Detach. Start, the Write methods and Detach must be called from one goroutine (the
// connection's reader); AddCue and Arrived from any.
type Session struct {
	b   *broadcast
	p   Publisher
	log *slog.Logger

	mu      sync.Mutex
	pipe    pipeline
	pending []media.Cue // cues that arrived before the pipeline existed, at most maxPendingCues

	// In-band metadata dropped since the last warning.
	inbandDrops    int
	inbandWarnedAt time.Time

	// The program-date-time clock maps a timestamp to the wall clock as origin + dts, where
	// origin is the earliest (arrival - dts) seen: frames that arrive late (a slow start, a
	// reader that reads ahead while it detects tracks and replays later) do not push the clock
	// into the future. Guarded by mu.
	clockOrigin time.Time
	curDTS      time.Duration // timestamp of the frame being packaged (reader goroutine only)
	hasVideo    bool

	// undescribed holds the tracks of a Start whose H.264 came without parameter sets (WHIP
	// learns them from the first key frame): the ingest configuration is written again, with
	// profile, level and size, at the first SPS. Reader goroutine only.
	undescribed *Tracks
}

// pipeline packages a publisher's stream: a packager for BASIC channels, a transcoding ladder
// (transcode.Ladder) for the others.
type pipeline interface {
	WriteH264(ctx context.Context, pts, dts time.Duration, au [][]byte) error
	WriteH265(ctx context.Context, pts, dts time.Duration, au [][]byte) error
	WriteMPEG4Audio(ctx context.Context, pts time.Duration, au []byte) error
	WriteOpus(ctx context.Context, pts time.Duration, packet []byte) error
	AddCue(c media.Cue)
	Close(ctx context.Context) error
}

// Attach gives an authorized publisher its channel's broadcast: the one waiting in its
// reconnect grace (the stream session continues), or a new one once the channel is claimed
// cluster-wide. A channel that already has a publisher, here or on another ingest, over any
// protocol, is refused. The caller must Detach the session when the connection ends.
func (s *Server) Attach(ctx context.Context, p Publisher) (*Session, error) {
	if p.Log == nil {
		p.Log = s.log
	}
	sess := &Session{p: p, log: p.Log}
	b, err := s.attach(ctx, p.Channel, sess)
	if err != nil {
		return nil, err
	}
	sess.b = b
	return sess, nil
}

// StreamID is the stream session's ID.
func (s *Session) StreamID() string { return s.b.streamID }

// Meter measures the publisher's input (IVS's ingest metrics): the protocol counts bytes,
// frames and key frames as they arrive.
func (s *Session) Meter() metrics.IngestMeter { return s.b.meter }

// Start describes the publisher's tracks and builds what packages them, continuing the
// broadcast's timeline after a reconnect. Cues added before it are put into the first part.
func (s *Session) Start(ctx context.Context, t Tracks) error {
	if t.Video == nil && t.Audio == nil {
		return errRefused{"no supported track (H.264, H.265, AAC or Opus)"}
	}
	s.b.describeIngest(ingestConfig(t.Video, t.Audio, t.Encoder))
	if c, ok := t.Video.(*mp4codecs.H264); ok && len(c.SPS) == 0 {
		s.undescribed = &t
	}
	pkg, err := s.b.newPipeline(ctx, t.Video, t.Audio, s.mediaClock)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pipe = pkg
	s.hasVideo = t.Video != nil
	for _, c := range s.pending {
		pkg.AddCue(c)
	}
	s.pending = nil
	s.mu.Unlock()
	return nil
}

// Arrived notes that a frame with decode timestamp dts arrived now. A protocol whose reader
// buffers frames before handing them to the Write methods calls it as each arrives, so that
// program-date-time follows the arrival, not the buffering; Write notes it too.
func (s *Session) Arrived(dts time.Duration) {
	now := time.Now()
	s.mu.Lock()
	if o := now.Add(-dts); s.clockOrigin.IsZero() || o.Before(s.clockOrigin) {
		s.clockOrigin = o
	}
	s.mu.Unlock()
}

// mediaClock tells the packager the wall-clock time of the frame it is packaging.
func (s *Session) mediaClock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clockOrigin.IsZero() {
		return time.Now()
	}
	return s.clockOrigin.Add(s.curDTS)
}

// observe feeds the health tracker and the clock with the frame about to be packaged.
func (s *Session) observe(dts time.Duration, video bool) {
	s.Arrived(dts)
	s.mu.Lock()
	s.curDTS = dts
	s.mu.Unlock()
	if video || !s.hasVideo {
		s.b.health.observe(time.Now(), dts)
	}
}

func (s *Session) started() (pipeline, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pipe == nil {
		return nil, fmt.Errorf("write before the session's tracks were given (Start)")
	}
	return s.pipe, nil
}

// ExpectKeyFrame tells the pipeline that the publisher is about to be asked for a key frame
// (a WHIP ingest's PLI), which may come off the cadence of the key frames before it. A lone
// packager then holds back the parts that key frame could end, so its playlists' preload
// hints stay right (packager.Packager.ExpectKeyFrame); a ladder makes its own key frames.
// Call it before the write of the frame after which the request is sent.
func (s *Session) ExpectKeyFrame() {
	p, err := s.started()
	if err != nil {
		return
	}
	if k, ok := p.(interface{ ExpectKeyFrame() }); ok {
		k.ExpectKeyFrame()
	}
}

// WriteH264 packages an H.264 access unit: NALUs without start codes. ctx is the
// connection's; the parts the write completes reach the origin under it.
func (s *Session) WriteH264(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	p, err := s.started()
	if err != nil {
		return err
	}
	s.observe(dts, true)
	if s.undescribed != nil {
		s.describeFrom(au)
	}
	return wrapPackage(p.WriteH264(ctx, pts, dts, au))
}

// describeFrom writes the ingest configuration again once an access unit carries the SPS
// (and PPS) that Start lacked. It runs once per session: one store update, in the background.
func (s *Session) describeFrom(au [][]byte) {
	var sps, pps []byte
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = nalu
		case h264.NALUTypePPS:
			pps = nalu
		}
	}
	if sps == nil {
		return
	}
	t := *s.undescribed
	s.undescribed = nil
	t.Video = &mp4codecs.H264{SPS: sps, PPS: pps}
	// The store update runs off the reader goroutine, as Stream Start's does: a slow store
	// must not hold the first key frame back.
	go s.b.describeIngest(ingestConfig(t.Video, t.Audio, t.Encoder))
}

// WriteH265 packages an H.265 access unit, like WriteH264.
func (s *Session) WriteH265(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	p, err := s.started()
	if err != nil {
		return err
	}
	s.observe(dts, true)
	return wrapPackage(p.WriteH265(ctx, pts, dts, au))
}

// WriteMPEG4Audio packages one AAC access unit; the session keeps au.
func (s *Session) WriteMPEG4Audio(ctx context.Context, pts time.Duration, au []byte) error {
	p, err := s.started()
	if err != nil {
		return err
	}
	s.observe(pts, false)
	return wrapPackage(p.WriteMPEG4Audio(ctx, pts, au))
}

// WriteOpus packages one Opus packet; the session keeps packet.
func (s *Session) WriteOpus(ctx context.Context, pts time.Duration, packet []byte) error {
	p, err := s.started()
	if err != nil {
		return err
	}
	s.observe(pts, false)
	return wrapPackage(p.WriteOpus(ctx, pts, packet))
}

func wrapPackage(err error) error {
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	return nil
}

// AddCue takes in-band timed metadata from the publisher. It obeys PutMetadata's rules and
// shares its budget: a channel takes 5 cues a second, however they arrive. A cue that breaks
// them is dropped (with a warning at most once a second, so a publisher that floods them
// cannot flood the log) and the error says why.
func (s *Session) AddCue(text string) error {
	if err := metadata.Check(text); err != nil {
		s.dropInband(err.Error())
		return err
	}
	if !s.b.limiter.Allow() {
		err := fmt.Errorf("more than %v timed metadata cues per second on the channel", s.b.limiter.Limit())
		s.dropInband(err.Error())
		return err
	}
	s.addCue(text)
	return nil
}

func (s *Session) dropInband(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inbandDrops++
	if now := time.Now(); now.Sub(s.inbandWarnedAt) >= time.Second {
		s.log.Warn("in-band timed metadata dropped", "reason", reason, "dropped", s.inbandDrops)
		s.inbandWarnedAt, s.inbandDrops = now, 0
	}
}

// addCue puts timed metadata (in-band or from PutMetadata) into the next part of every
// rendition, or holds it until the pipeline exists.
func (s *Session) addCue(text string) { s.queueCue(s.b.newCue(text)) }

// queueCue queues a prepared cue (timed metadata or an ad break) for every rendition.
func (s *Session) queueCue(c media.Cue) {
	s.mu.Lock()
	if s.pipe != nil {
		s.pipe.AddCue(c)
	} else {
		if len(s.pending) >= maxPendingCues {
			s.log.Warn("timed metadata dropped: too many cues wait for the stream's tracks", "max", maxPendingCues, "dropped", s.pending[0].ID)
			s.pending = slices.Delete(s.pending, 0, 1)
		}
		s.pending = append(s.pending, c)
	}
	s.mu.Unlock()
}

// starving reports a transcoder that falls behind real time.
func (s *Session) starving() bool {
	s.mu.Lock()
	l, ok := s.pipe.(*transcode.Ladder)
	s.mu.Unlock()
	return ok && l.Starving()
}

// close disconnects the publisher.
func (s *Session) close() {
	if s.p.Close != nil {
		s.p.Close()
	}
}

// Detach ends the session when the publisher's connection ended (err says why; nil or io.EOF
// for a publisher that hung up, ErrPublisherEnded for one that ended the broadcast). The last
// part is flushed under ctx, even once ctx is cancelled (the connection's context ends at
// shutdown), for at most flushTimeout. Unless the broadcast is stopping or the publisher ended
// it, it then waits the reconnect grace for the publisher to come back.
func (s *Session) Detach(ctx context.Context, err error) {
	s.mu.Lock()
	p := s.pipe
	s.mu.Unlock()
	if p != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		if err := p.Close(fctx); err != nil {
			s.log.Warn("flush last part", "err", err)
		}
		cancel()
		s.b.keepState(p)
	}
	s.b.detach(s, err)
}

// ingestConfig describes the input as GetStreamSession reports it.
func ingestConfig(video, audio mp4codecs.Codec, enc Encoder) *store.IngestConfig {
	ic := &store.IngestConfig{}
	if video != nil {
		v := &store.VideoConfig{TargetBitrate: enc.VideoBitrate, TargetFramerate: enc.FrameRate,
			Width: enc.Width, Height: enc.Height, Encoder: enc.Name}
		describeVideo(video, v)
		if enc.SentVideo != "" {
			// Profile and level would describe the ingest's own H.264, not the publisher's.
			v.Codec, v.Profile, v.Level = enc.SentVideo, "", ""
		}
		ic.Video = v
	}
	if audio != nil {
		a := &store.AudioConfig{TargetBitrate: enc.AudioBitrate}
		switch c := audio.(type) {
		case *mp4codecs.MPEG4Audio:
			a.Codec = fmt.Sprintf("mp4a.40.%d", c.Config.Type)
			a.SampleRate = int64(c.Config.SampleRate)
			a.Channels = int64(c.Config.ChannelCount)
		case *mp4codecs.Opus:
			a.Codec, a.SampleRate, a.Channels = "opus", 48000, int64(c.ChannelCount)
		}
		if enc.SentAudio != "" {
			a.Codec = enc.SentAudio
		}
		ic.Audio = a
	}
	return ic
}
