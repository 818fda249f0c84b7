// Package transcode turns a STANDARD or ADVANCED channel's stream into IVS's adaptive ladder:
// ffmpeg encodes the rungs and one packager per rendition cuts them keyframe-aligned with the
// source. It supervises ffmpeg and publishes the renditions in lockstep, copying the source
// into those whose transcoder is down.
package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/ingest/packager"
	"glasscast/media"
)

// Config configures a Ladder.
type Config struct {
	// ChannelType and Preset choose the ladder (Plan).
	ChannelType, Preset string
	// FFmpeg is the ffmpeg command, looked up on PATH when it has no slash (default "ffmpeg").
	FFmpeg string
	// X264Preset is the encoder speed (default "veryfast"); a run that falls behind real time
	// restarts one step faster.
	X264Preset string
	// Packager shapes every rendition (part and segment targets, logger); its Start continues
	// the source's timeline, as for a BASIC channel, and its Now (default time.Now) dates the
	// source's first key frame, from which every rendition's program-date-time follows.
	Packager packager.Config
	// Renditions is where a previous publisher's transcoded renditions stopped (Ladder.State).
	Renditions map[string]packager.Start
	// Event records a session event (name, code) such as "Transcoder Failure".
	Event func(name, code string)
	// MaxLag is how far ffmpeg may fall behind the input before it is restarted (default 4 s).
	MaxLag time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Session event names and codes the ladder records.
const (
	EventFailure  = "Transcoder Failure"
	EventRecovery = "Transcoder Recovery"

	CodeUnavailable = "TranscoderUnavailable"
	CodeExited      = "TranscoderExited"
	CodeStalled     = "TranscoderStalled"
	CodeTooSlow     = "TranscoderTooSlow"
	CodeMisaligned  = "TranscoderMisaligned"
	CodePackaging   = "TranscoderOutputInvalid"
)

const (
	startupTimeout = 8 * time.Second
	defaultMaxLag  = 4 * time.Second
	holdMargin     = 2 * time.Second  // the gate waits MaxLag plus this for a lagging rendition
	starveLag      = time.Second      // a transcoder this far behind makes the stream STARVING
	starveHold     = 10 * time.Second // ... for this long after
	catchUpGrace   = 3 * time.Second  // for a new run to work through its first segment
	maxFailures    = 5                // consecutive failed runs before giving up for the stream
	healthyReset   = time.Minute      // a run this long forgives earlier failures
	maxBackoff     = 30 * time.Second
)

// Ladder packages one publisher's stream as a ladder: the source packager (a rendition itself
// on STANDARD channels, the timeline every rung follows on all), an ffmpeg run that encodes
// the rungs, and a packager per rung. Write*, Close and State must be called from one
// goroutine (the publisher's); AddCue, PartTarget and Starving from any.
type Ladder struct {
	// ctx is the publisher's context: what the transcoder's own goroutines deliver (parts of
	// transcoded renditions) goes to the output under it; the Write and Close calls deliver
	// under their callers' contexts.
	ctx        context.Context
	cfg        Config
	log        *slog.Logger
	gate       *gate
	src        *packager.Packager
	srcStart   packager.Start
	h265       bool
	audioCodec codecs.Codec
	params     [3][]byte // VPS (H.265 only), SPS, PPS in force

	// What the source packager is being given, for its callbacks.
	cur         frame
	key         bool
	writing     bool
	initInWrite bool
	srcReady    bool

	anchored   bool // the source's first key frame fixed the wall clock of its timeline
	anchorIn   time.Duration
	anchorWall time.Time
	lastDTS    time.Duration // newest video written
	audioMark  time.Duration // newest audio written, -1 before any

	replay       replay
	planned      bool
	ffmpeg       string
	rungs        []Rung
	slots        []*slot
	disabled     bool
	run          *run
	runs         int
	failures     int
	healthySince time.Time
	nextStart    time.Time
	preset       int
	recovering   bool
	closed       bool

	cueMu sync.Mutex
	cueQ  []media.Cue

	starvingUntil atomic.Int64
}

// run is one ffmpeg process and where its input started.
type run struct {
	id       int
	proc     *process
	seg      segmentStart
	fed      *fedIndex
	fedIn    time.Duration // presentation time of the newest input frame given to ffmpeg
	started  time.Time
	caughtUp bool
}

// New returns a ladder that publishes to out. ctx is the publisher's, for as long as the
// ladder runs. video must be H.264 or H.265; audio (AAC, Opus
// or nil) is copied into every rendition.
func New(ctx context.Context, cfg Config, video, audio codecs.Codec, out media.Output) (*Ladder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.X264Preset == "" {
		cfg.X264Preset = "veryfast"
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = defaultMaxLag
	}
	if cfg.Event == nil {
		cfg.Event = func(string, string) {}
	}
	if cfg.Packager.Now == nil {
		cfg.Packager.Now = time.Now
	}
	l := &Ladder{ctx: ctx, cfg: cfg, log: cfg.Logger, audioCodec: audio, srcStart: cfg.Packager.Start, audioMark: -1}
	l.preset = slices.Index(x264Presets, cfg.X264Preset)
	if l.preset < 0 {
		return nil, fmt.Errorf("x264 preset %q (want one of %v)", cfg.X264Preset, x264Presets)
	}
	switch v := video.(type) {
	case *codecs.H264:
		l.params = [3][]byte{nil, bytes.Clone(v.SPS), bytes.Clone(v.PPS)}
	case *codecs.H265:
		l.h265, l.params = true, [3][]byte{bytes.Clone(v.VPS), bytes.Clone(v.SPS), bytes.Clone(v.PPS)}
	default:
		return nil, fmt.Errorf("a ladder needs H.264 or H.265 video, not %T", video)
	}
	// The gate waits for a lagging rendition a little longer than the supervisor takes to
	// replace its transcoder, so that only a transcoder that stopped for good is not waited for.
	l.gate = newGate(out, l.log, cfg.MaxLag+holdMargin)
	pcfg := cfg.Packager
	pcfg.Rendition = SourceName
	pcfg.Now = l.sourceNow
	src, err := packager.New(pcfg, video, audio, &sourceOutput{l})
	if err != nil {
		return nil, err
	}
	l.src = src
	return l, nil
}

// PartTarget is the stream's PART-TARGET, the source's: every rendition uses it.
func (l *Ladder) PartTarget() time.Duration { return l.src.PartTarget() }

// Starving reports whether the transcoder has recently fallen behind real time.
func (l *Ladder) Starving() bool { return time.Now().UnixNano() < l.starvingUntil.Load() }

// AddCue queues timed metadata for every rendition. It is attached after the newest frame the
// source has when the publisher's goroutine next writes, and after the same frame in every
// rendition, so it lands at one media time everywhere.
func (l *Ladder) AddCue(c media.Cue) {
	l.cueMu.Lock()
	if len(l.cueQ) >= maxSlotCues {
		l.cueQ = l.cueQ[1:] // nothing is being written: the publisher is stuck
	}
	l.cueQ = append(l.cueQ, c)
	l.cueMu.Unlock()
}

func (l *Ladder) drainCues() {
	l.cueMu.Lock()
	q := l.cueQ
	l.cueQ = nil
	l.cueMu.Unlock()
	for _, c := range q {
		if l.anchored {
			// The cue's instant is that of the frame it follows, on the PDT timeline.
			c.Time = l.anchorWall.Add(l.lastDTS - l.anchorIn)
		}
		l.src.AddCue(c)
		for _, s := range l.slots {
			s.addCue(c, l.lastDTS)
		}
	}
}

// WriteH264 adds an H.264 access unit (NALUs without start codes, as gortmplib delivers them).
func (l *Ladder) WriteH264(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	if l.h265 {
		return errors.New("write H.264: the ladder's video is H.265")
	}
	return l.writeVideo(ctx, pts, dts, au)
}

// WriteH265 adds an H.265 access unit.
func (l *Ladder) WriteH265(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	if !l.h265 {
		return errors.New("write H.265: the ladder's video is H.264")
	}
	return l.writeVideo(ctx, pts, dts, au)
}

func (l *Ladder) writeVideo(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	if err := l.gate.publishErr(); err != nil {
		return err
	}
	l.drainCues()
	key := l.scanParams(au)
	l.cur, l.key = frame{video: true, pts: pts, dts: dts}, key
	err := l.writeSource(func() error {
		if l.h265 {
			return l.src.WriteH265(ctx, pts, dts, au)
		}
		return l.src.WriteH264(ctx, pts, dts, au)
	})
	if err != nil {
		return err
	}
	l.lastDTS = dts
	f := frame{video: true, pts: pts, dts: dts, au: l.annexB(au, key), mark: l.audioMark}
	l.replay.add(f)
	if l.run != nil {
		l.feed(f)
	}
	l.supervise(ctx, time.Now())
	l.gate.tick(ctx)
	return l.gate.publishErr()
}

// WriteMPEG4Audio adds an AAC access unit; the ladder keeps au (shared by every rendition).
func (l *Ladder) WriteMPEG4Audio(ctx context.Context, pts time.Duration, au []byte) error {
	return l.writeAudio(pts, au, func() error { return l.src.WriteMPEG4Audio(ctx, pts, au) })
}

// WriteOpus adds an Opus packet, kept like WriteMPEG4Audio's access units.
func (l *Ladder) WriteOpus(ctx context.Context, pts time.Duration, packet []byte) error {
	return l.writeAudio(pts, packet, func() error { return l.src.WriteOpus(ctx, pts, packet) })
}

func (l *Ladder) writeAudio(pts time.Duration, au []byte, write func() error) error {
	if err := l.gate.publishErr(); err != nil {
		return err
	}
	l.drainCues()
	l.cur, l.key = frame{pts: pts, dts: pts}, false
	if err := l.writeSource(write); err != nil {
		return err
	}
	l.audioMark = pts
	f := frame{pts: pts, dts: pts, audio: au}
	l.replay.add(f)
	if l.run != nil {
		for _, s := range l.slots {
			s.addAudio(f)
		}
	}
	return l.gate.publishErr()
}

// writeSource runs a source packager write with the callbacks told what is being written.
func (l *Ladder) writeSource(write func() error) error {
	l.writing, l.initInWrite = true, false
	err := write()
	l.writing = false
	if l.initInWrite {
		// From the next write on, a segment cut during a key frame's write starts at that frame
		// (the write that fixed the frame rate replayed several frames at once).
		l.srcReady = true
	}
	return err
}

// sourceNow is the source packager's clock. It is read once, at the first key frame, which
// anchors the PDT timeline every rendition shares.
func (l *Ladder) sourceNow() time.Time {
	w := l.cfg.Packager.Now()
	if l.writing && l.cur.video && !l.anchored {
		l.anchored, l.anchorIn, l.anchorWall = true, l.cur.dts, w
		l.replay.reset(segmentStart{msn: l.srcStart.MSN, pts: l.cur.pts, dts: l.cur.dts, media: l.srcStart.Time, wall: w})
	}
	return w
}

// sourceOutput receives the source packager's output: it plans the ladder on the first init,
// notes where segments start for restarts, and passes everything to the gate.
type sourceOutput struct{ l *Ladder }

func (o *sourceOutput) Init(ctx context.Context, r media.Rendition, b []byte) error {
	l := o.l
	l.initInWrite = true
	if !l.planned {
		l.plan(r)
	}
	l.gate.sourceInit(ctx, r, b)
	return l.gate.publishErr()
}

func (o *sourceOutput) Part(ctx context.Context, _ string, p media.Part) error {
	l := o.l
	if p.Last && l.writing && l.key && l.srcReady && l.anchored {
		wall := p.ProgramDateTime.Add(p.Duration)
		l.replay.reset(segmentStart{msn: p.MSN + 1, pts: l.cur.pts, dts: l.cur.dts,
			media: l.srcStart.Time + wall.Sub(l.anchorWall), wall: wall})
	}
	l.gate.sourcePart(ctx, p)
	return l.gate.publishErr()
}

// plan decides the ladder once the source's size and frame rate are known.
func (l *Ladder) plan(r media.Rendition) {
	l.planned = true
	rungs, err := Plan(l.cfg.ChannelType, l.cfg.Preset, Input{Width: r.Width, Height: r.Height, FrameRate: r.FrameRate})
	publishSource := err != nil
	if err != nil {
		l.log.Warn("no ladder for this input; passing the source through", "err", err)
	}
	var transcoded []Rung
	for _, rg := range rungs {
		if rg.Source {
			publishSource = true
		} else {
			transcoded = append(transcoded, rg)
		}
	}
	if len(transcoded) > 0 {
		path, err := lookFFmpeg(l.cfg.FFmpeg)
		if err != nil {
			l.log.Error("cannot transcode; passing the source through", "err", err)
			l.cfg.Event(EventFailure, CodeUnavailable)
			transcoded, publishSource = nil, true
		}
		l.ffmpeg = path
	}
	names := make([]string, len(transcoded))
	for i, rg := range transcoded {
		names[i] = rg.Name
		// A reconnect continues the moof sequence, which also marks the discontinuity.
		l.slots = append(l.slots, &slot{idx: i, rung: rg, gate: l.gate, audioCodec: l.audioCodec,
			seq: l.cfg.Renditions[rg.Name].Sequence})
	}
	l.rungs = transcoded
	l.gate.configure(publishSource, names, l.cfg.Renditions, l.srcStart.Generation)
	l.log.Info("ladder planned", "input", fmt.Sprintf("%dx%d@%g", r.Width, r.Height, r.FrameRate),
		"source", publishSource, "transcoded", names)
}

// Close flushes every rendition: ffmpeg gets to encode what it was given, then every packager
// emits its last part, and renditions that ended short are completed from the source.
func (l *Ladder) Close(ctx context.Context) error {
	if l.closed {
		return nil
	}
	l.closed = true
	l.drainCues()
	if r := l.run; r != nil {
		l.run = nil
		r.proc.stop(l.drainFor(ctx))
		l.log.Debug("transcoder stopped", "run", r.id, "exit", r.proc.exitReason())
		for _, s := range l.slots {
			s.stop(ctx, r.id, true)
		}
	}
	err := l.src.Close(ctx)
	l.gate.finish(ctx)
	if err == nil {
		err = l.gate.publishErr()
	}
	return err
}

// drainFor is how long ffmpeg gets to encode what it was given once its input ends: as long
// as the gate waits for a lagging rendition (6 s by default), since a run may be up to MaxLag
// behind while live and its renditions' last frames come out only after that (on loaded cores
// a fixed 3 s cut the last segment of every rung short by up to 9 frames). A deadline on ctx
// keeps half of what is left for the wait on ffmpeg's outputs and the flush that follow.
func (l *Ladder) drainFor(ctx context.Context) time.Duration {
	d := l.cfg.MaxLag + holdMargin
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/2)
	}
	return max(d, 0)
}

// State returns where the source and every transcoded rendition stopped, for the ladder of a
// publisher that reconnects: all continue at the source's next MSN.
func (l *Ladder) State() (packager.Start, map[string]packager.Start) {
	src := l.src.State()
	out := make(map[string]packager.Start, len(l.slots))
	for i, s := range l.slots {
		gen, init := l.gate.renditionState(i)
		s.mu.Lock()
		seq := max(s.seq, 1)
		s.mu.Unlock()
		out[s.rung.Name] = packager.Start{MSN: src.MSN, Time: src.Time, PartTarget: src.PartTarget,
			Sequence: seq, Generation: gen, Init: init}
	}
	return src, out
}
