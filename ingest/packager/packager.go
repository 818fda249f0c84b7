// Package packager cuts a live stream's access units into CMAF fMP4 for one rendition: an init
// segment, then segments that start on key frames, delivered part by part for LL-HLS.
// It fixes PART-TARGET from the first frames, continues the timeline across publisher
// reconnects, and writes timed metadata as emsg boxes in front of the next part.
package packager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/media"
)

// Config configures a Packager. Zero values take the LOW-latency defaults of DESIGN.md.
type Config struct {
	// Rendition is the name written into media.Rendition.Name.
	Rendition string
	// PartTarget is the requested part duration (default 200 ms). The advertised PART-TARGET is
	// a whole number of frames plus a little headroom, see Packager.PartTarget.
	PartTarget time.Duration
	// SegmentTarget is the TARGETDURATION (default 2 s); segments end at the first key frame
	// after half of it and never grow past it by more than EXTINF rounding allows.
	SegmentTarget time.Duration
	// Start continues the timeline of a previous packager after a publisher reconnect (its
	// State); the zero value starts a new broadcast.
	Start Start
	// Now is the clock of EXT-X-PROGRAM-DATE-TIME and of cue times (default time.Now).
	Now func() time.Time
	// ArrivalClock says Now dates each frame as it is written by the earliest arrival seen so
	// far (the ingest session's clock), so the program-date-time anchor may still move earlier
	// until the first part is out. A publisher whose first frames come late (an encoder
	// warming up, a session starting while its frames wait in the socket) would otherwise date
	// every later frame after it arrived: latency measured from program-date-time would read
	// short, and a part could look ready before its time.
	ArrivalClock bool
	// EarlyParts sends a part out with its last frame rather than with the frame after it,
	// once the video is steady (a part's worth of frames a nominal interval apart): the last
	// frame's duration is then known ahead, and the parts reach viewers one frame interval
	// sooner. The frame after such a part is placed where the part ended. A part that may end
	// its segment waits for the next frame unless the key frames' cadence says none is due, so
	// an early part is never marked Last; when the next frame ends its segment all the same
	// (a scene cut), or the stream ends, the part is sent again marked Last, which the origin
	// takes as the segment's end. So only an output that does (the origin, not a transcoding
	// ladder's gate) may ask for early parts.
	EarlyParts bool
	// Logger receives forced cuts and dropped input (default slog.Default()).
	Logger *slog.Logger
}

// Start is what a successor packager needs to continue a broadcast's timeline, so that the
// origin can keep one playlist across a publisher reconnect.
type Start struct {
	MSN        uint64        // media sequence number of the next segment
	Sequence   uint32        // next moof sequence number; 0 means a new broadcast
	Time       time.Duration // media time (tfdt) at which the next segment starts
	PartTarget time.Duration // advertised PART-TARGET, fixed for the broadcast
	Generation int           // generation of the last init segment
	Init       []byte        // the last init segment, to tell whether the next one differs
	// AdBreak is the splice out of an ad break still running, which started at media time
	// AdBreakAt: the successor writes its splice in.
	AdBreak   *media.Cue
	AdBreakAt time.Duration
}

func (s Start) resumed() bool { return s.Sequence != 0 }

// Stats counts what the packager had to do about imperfect input.
type Stats struct {
	Parts, Segments int
	// ForcedCuts counts segments cut at a non-key frame because no key frame came in time.
	ForcedCuts int
	// LongParts and ShortParts count parts that break rule P2, longer than PART-TARGET or,
	// neither independent nor last of their segment, shorter than 85 % of it. Only input with
	// missing frames, a paused video, a rate that drifts from the one probed (a browser's
	// camera under load), or a frame rate change across a reconnect causes them: a part is
	// short only where the frame after it would have carried it past PART-TARGET.
	LongParts, ShortParts int

	DroppedVideo   int // before the first key frame or its parameter sets, or decoded out of order
	DroppedAudio   int // before the video started, overlapping the audio written, oversized, or past maxPartAudio
	TimestampJumps int // input clock jumps the timeline was rebased over
}

// Packager cuts one rendition. Write*, Close and State must be called from one goroutine;
// AddCue, PartTarget and Stats may be called from any. After a Write or Close fails (bad
// parameter sets, or the Output's error) the packager only returns that error.
type Packager struct {
	cfg Config
	out media.Output
	log *slog.Logger
	// ctx is the context of the Write or Close in progress: what they emit goes to out under
	// the caller's context. Set only for the duration of such a call.
	ctx context.Context

	h265      bool
	video     *track // nil for audio-only
	audio     *track // nil for video-only
	lead      *track // the track whose frames decide parts and segments
	audioCode codecs.Codec

	params   videoParams // latest parameter sets seen in the input
	attached videoParams // parameter sets last attached to a key frame

	// Before the frame rate is known, input waits in probe.
	ready      bool
	probe      []frame
	keySeen    bool
	firstWall  time.Time
	firstDTS   time.Duration // input time of the frame firstWall dates
	frameDur   time.Duration
	partTarget atomic.Int64
	n          int // frames per part
	// What probe holds, counted as it comes so that no write reads all of it.
	probeDTS    []time.Duration // of its video frames
	probeParams *videoParams    // of the first of them, the key frame
	probeTicks  int64           // its audio after the key frame, in audio ticks (probeFull)
	probeBytes  int             // and that audio's bytes

	seg    segmenter
	closed bool
	err    error // the first error: a packager that failed emits nothing more

	mu    sync.Mutex // guards cues, ads.waiting and stats
	cues  []media.Cue
	ads   adState
	stats Stats
}

// frame is one access unit on its way to a part.
type frame struct {
	video    bool
	key      bool
	pts, dts time.Duration // input timestamps
	au       [][]byte      // video NALUs, borrowed from the caller until placed
	payload  []byte        // sample bytes when already owned (AVCC for video)
	nominal  int64         // audio: duration in track ticks from the codec
	params   *videoParams  // key frames: parameter sets in force from this frame
}

// New returns a packager for one rendition. video is *codecs.H264, *codecs.H265 (the types
// fmp4.CodecH264/H265 alias) or nil; its parameter sets may be empty and arrive in band. audio
// is *codecs.MPEG4Audio, *codecs.Opus or nil. The codecs are not modified.
func New(cfg Config, video, audio codecs.Codec, out media.Output) (*Packager, error) {
	if cfg.PartTarget <= 0 {
		cfg.PartTarget = 200 * time.Millisecond
	}
	if cfg.SegmentTarget <= 0 {
		cfg.SegmentTarget = 2 * time.Second
	}
	if cfg.SegmentTarget < 2*cfg.PartTarget {
		return nil, fmt.Errorf("segment target %v is shorter than two part targets (%v)", cfg.SegmentTarget, cfg.PartTarget)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if out == nil {
		return nil, errors.New("nil output")
	}
	p := &Packager{cfg: cfg, out: out, log: cfg.Logger.With("rendition", cfg.Rendition)}
	id := 1
	switch v := video.(type) {
	case nil:
	case *codecs.H264:
		p.params = videoParams{sps: clone(v.SPS), pps: clone(v.PPS)}
	case *codecs.H265:
		p.h265 = true
		p.params = videoParams{vps: clone(v.VPS), sps: clone(v.SPS), pps: clone(v.PPS)}
	default:
		return nil, fmt.Errorf("unsupported video codec %T", video)
	}
	if video != nil {
		p.video = &track{id: id, timescale: videoTimescale}
		id++
	}
	switch a := audio.(type) {
	case nil:
	case *codecs.MPEG4Audio:
		if a.Config.SampleRate <= 0 {
			return nil, fmt.Errorf("AAC sample rate %d", a.Config.SampleRate)
		}
		c := *a
		p.audioCode = &c
		p.audio = &track{id: id, timescale: int64(a.Config.SampleRate)}
	case *codecs.Opus:
		c := *a
		p.audioCode = &c
		p.audio = &track{id: id, timescale: 48000}
	default:
		return nil, fmt.Errorf("unsupported audio codec %T", audio)
	}
	switch {
	case p.video != nil:
		p.lead = p.video
	case p.audio != nil:
		p.lead = p.audio
	default:
		return nil, errors.New("no video and no audio track")
	}
	p.partTarget.Store(int64(cfg.Start.PartTarget))
	p.seg.init(p)
	return p, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// PartTarget returns the advertised PART-TARGET: every part is at most this long, and all but
// the last of a segment and independent ones at least 85 % of it. It is zero until the frame
// rate is known, which is no later than the first Output.Init call, and never changes after.
func (p *Packager) PartTarget() time.Duration { return time.Duration(p.partTarget.Load()) }

// Stats returns the counters of imperfect input handled so far.
func (p *Packager) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Packager) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// AddCue queues a timed-metadata cue. The next part emitted starts with its emsg boxes and
// lists it in media.Part.Cues.
// A cue with an AdBreak waits for the next segment instead (adbreak.go).
func (p *Packager) AddCue(c media.Cue) {
	p.mu.Lock()
	if c.AdBreak != nil {
		p.ads.waiting = append(p.ads.waiting, c)
	} else {
		p.cues = append(p.cues, c)
	}
	p.mu.Unlock()
}

// ExpectKeyFrame tells the packager that the publisher has just been asked for a key frame (a
// WHIP ingest's PLI), which may come off the key frames' cadence: until it comes, or for a
// second at most, no part that it would end goes out early (Config.EarlyParts), so the
// playlist's preload hint still names the part that comes next. Call it from the goroutine
// that writes, before the write of the frame after which the request is sent.
func (p *Packager) ExpectKeyFrame() {
	p.seg.expectKey()
}

// WriteH264 adds an H.264 access unit: NALUs without start codes, as gortmplib delivers them.
// An access unit with parameter sets only (an RTMP sequence header) updates them. The packager
// may read au until the call returns and keeps none of it.
func (p *Packager) WriteH264(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	if p.video == nil || p.h265 {
		return errors.New("write H.264: the packager has no H.264 track")
	}
	defer p.under(ctx)()
	return p.writeVideo(pts, dts, au)
}

// WriteH265 adds an H.265 access unit, like WriteH264.
func (p *Packager) WriteH265(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	if p.video == nil || !p.h265 {
		return errors.New("write H.265: the packager has no H.265 track")
	}
	defer p.under(ctx)()
	return p.writeVideo(pts, dts, au)
}

// WriteMPEG4Audio adds one AAC access unit. The packager keeps au until the part holding it is
// emitted, so the caller must not reuse its memory.
func (p *Packager) WriteMPEG4Audio(ctx context.Context, pts time.Duration, au []byte) error {
	c, ok := p.audioCode.(*codecs.MPEG4Audio)
	if !ok {
		return errors.New("write AAC: the packager has no AAC track")
	}
	n := int64(mpeg4audio.SamplesPerAccessUnit)
	if c.Config.FrameLengthFlag {
		n = 960
	}
	defer p.under(ctx)()
	return p.write(frame{key: true, pts: pts, dts: pts, payload: au, nominal: n})
}

// WriteOpus adds one Opus packet, kept like WriteMPEG4Audio's access units.
func (p *Packager) WriteOpus(ctx context.Context, pts time.Duration, packet []byte) error {
	if _, ok := p.audioCode.(*codecs.Opus); !ok {
		return errors.New("write Opus: the packager has no Opus track")
	}
	n := opus.PacketDuration2(packet)
	if n <= 0 {
		p.count(func(s *Stats) { s.DroppedAudio++ }) // not a packet a decoder could play
		return nil
	}
	defer p.under(ctx)()
	return p.write(frame{key: true, pts: pts, dts: pts, payload: packet, nominal: n})
}

func (p *Packager) writeVideo(pts, dts time.Duration, au [][]byte) error {
	if err := p.usable(); err != nil {
		return err
	}
	f := frame{video: true, pts: pts, dts: dts}
	vcl := false
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		if p.h265 {
			switch typ := nalu[0] >> 1 & 0x3f; {
			case typ == 32:
				p.params.vps = keep(p.params.vps, nalu)
			case typ == 33:
				p.params.sps = keep(p.params.sps, nalu)
			case typ == 34:
				p.params.pps = keep(p.params.pps, nalu)
			case typ < 32:
				vcl = true
				f.key = f.key || typ >= 16 && typ <= 21 // BLA, IDR and CRA: random access points
			}
		} else {
			switch nalu[0] & 0x1f {
			case 7:
				p.params.sps = keep(p.params.sps, nalu)
			case 8:
				p.params.pps = keep(p.params.pps, nalu)
			case 5:
				vcl, f.key = true, true
			case 1, 2:
				vcl = true
			}
		}
	}
	if !vcl {
		return nil // parameter sets, SEI or filler alone: nothing to show
	}
	if f.key {
		if !p.params.complete(p.h265) {
			p.count(func(s *Stats) { s.DroppedVideo++ })
			return nil
		}
		// Attach the parameter sets to the key frame they start with, so that a change takes
		// effect at that frame even after the frame waited in the probe buffer.
		if !p.params.equal(&p.attached) {
			p.attached = p.params
			params := p.params
			f.params = &params
		}
	}
	f.au = au
	return p.write(f)
}

// keep returns nalu as the new value of a parameter set, reusing cur when nothing changed so
// that an unchanged SPS repeated before every IDR costs no allocation.
func keep(cur, nalu []byte) []byte {
	if string(cur) == string(nalu) {
		return cur
	}
	return clone(nalu)
}

// under makes ctx the context of what the call in progress emits; the returned function ends
// that.
func (p *Packager) under(ctx context.Context) func() {
	p.ctx = ctx
	return func() { p.ctx = nil }
}

func (p *Packager) usable() error {
	if p.err != nil {
		return p.err
	}
	if p.closed {
		return errors.New("packager closed")
	}
	return nil
}

func (p *Packager) write(f frame) error {
	if err := p.usable(); err != nil {
		return err
	}
	if !f.video && len(f.payload) > maxAudioFrame {
		p.count(func(s *Stats) { s.DroppedAudio++ }) // no AAC or Opus frame is this large
		return nil
	}
	p.earlierArrival(f)
	var err error
	if p.ready {
		err = p.seg.push(f)
	} else {
		err = p.buffer(f)
	}
	// After a failure the timeline may miss an init or a part: continuing would emit parts the
	// origin cannot play, so the packager stops and its State lets a successor take over.
	p.err = err
	return err
}

// earlierArrival moves the program-date-time anchor to the arrival of lead frame f when that
// is earlier (Config.ArrivalClock), until the first part fixes it: firstWall while probing,
// the segmenter's wallBase after. Both date the same frame, the first key frame (or audio
// frame).
func (p *Packager) earlierArrival(f frame) {
	if !p.cfg.ArrivalClock || p.seg.emitted || !f.video && p.video != nil {
		return
	}
	wall, base := &p.firstWall, p.firstDTS
	if p.ready {
		wall, base = &p.seg.wallBase, p.seg.inBase
	}
	if wall.IsZero() {
		return // f is the frame the anchor will date
	}
	if w := p.cfg.Now().Add(base - f.dts); w.Before(*wall) {
		*wall = w
	}
}

// Close flushes the last part, marked Last. A packager that never learnt its frame rate (a
// publisher gone within half a second) still emits what it holds.
func (p *Packager) Close(ctx context.Context) error {
	if p.closed || p.err != nil {
		return p.err
	}
	defer p.under(ctx)()
	p.closed = true
	if !p.ready {
		if err := p.start(); err != nil {
			p.err = fmt.Errorf("close: %w", err)
			return p.err
		}
	}
	if err := p.seg.flush(); err != nil {
		p.err = fmt.Errorf("close: %w", err)
		return p.err
	}
	return nil
}

// State returns what a successor needs to continue this broadcast: MSN, moof sequence, media
// time, PART-TARGET and init generation after everything emitted so far.
func (p *Packager) State() Start {
	return p.seg.state()
}
