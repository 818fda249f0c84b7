package packager

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/media"
)

// track is one track's samples on the output timeline, in its own timescale.
type track struct {
	id        int
	timescale int64

	samples []*fmp4.Sample // of the part being built, durations known
	base    int64          // decode time of samples[0]

	// pending is the newest sample: its duration is known only when the next one arrives.
	pending        *fmp4.Sample
	pendingDTS     int64
	pendingIn      time.Duration // its input timestamp, to rebase over clock jumps
	pendingNominal int64         // audio: the codec's frame duration

	end     int64 // end of the last emitted sample
	emitted bool
}

// finish moves the pending sample into the part being built, now that its duration is known.
func (t *track) finish(dur int64) {
	if len(t.samples) == 0 {
		t.base = t.pendingDTS
	}
	t.pending.Duration = uint32(dur)
	t.samples = append(t.samples, t.pending)
	t.pending = nil
}

// segmenter places samples into parts and segments and emits them. Its time fields are in
// ticks of the leading track (video when there is video).
type segmenter struct {
	p *Packager

	inBase   time.Duration // input instant that maps to outBase
	outBase  time.Duration // media time where this packager starts
	wallBase time.Time     // wall clock of outBase
	started  bool
	emitted  bool // a part is out, so wallBase is fixed

	fdTicks, targetTicks, minSegTicks, maxSegTicks, jumpTicks int64
	floorTicks                                                int64 // 85 % of targetTicks: rule P2's shortest part

	segStart, partStart int64
	partFrames          int
	independent         bool
	msn                 uint64
	index               int
	seq                 uint32
	discontinuity       bool
	inBand              bool // H.264 key frames carry the SPS and PPS (s.cur) in-band: they changed, or may have

	// Early parts (Config.EarlyParts).
	early    bool  // the lead's newest frame went out in a part, its duration foreseen
	steady   int   // lead frames in a row that came within tolTicks of the nominal interval
	tolTicks int64 // RTMP's millisecond timestamps put a frame up to this far off the grid
	keyed    bool  // a key frame was placed, at keyAt
	keyAt    int64
	shift    int64      // how much later than placed the pending video frame came (placed where an early part ended, or just after a frame so placed)
	gop      int64      // the time between the two newest key frames
	prevGop  int64      // and between the two before; 0 after a key frame came unforeseen
	keyDue   bool       // the publisher was asked for a key frame (ExpectKeyFrame), which has not come yet
	dueSince int64      // the lead frame time the wait for it counts from; -1 until a lead frame follows the request
	lastOut  media.Part // the newest part sent

	cur        videoParams // parameter sets of the current init
	gen        int
	inits      int    // init segments emitted by this packager
	initBytes  []byte // the last one
	bandwidth  int
	arena      []byte // AVCC bytes of the part being built; reused once the part is out
	loggedCuts bool

	// Audio held in the part being built when it is not the lead (capAudio).
	heldTicks int64 // by its frames' nominal durations, in audio ticks
	heldBytes int
	capped    bool          // the part holds all it may: audio is dropped until it goes out
	capIn     time.Duration // the input time the audio reached meanwhile
}

func (s *segmenter) init(p *Packager) {
	st := p.cfg.Start
	s.p = p
	s.msn, s.seq, s.outBase = st.MSN, max(st.Sequence, 1), st.Time
	s.gen = st.Generation
	s.discontinuity = st.resumed()
	// A reconnecting publisher may send other parameter sets, and a player that joined before
	// may hold an older packager's: in-band they reach it whatever init it has.
	s.inBand = st.resumed() && !p.h265
	if st.AdBreak != nil {
		out := *st.AdBreak
		p.ads.open, p.ads.outAt = &out, st.AdBreakAt
	}
}

// begin starts the timeline: the first frame of the leading track, at input time in, becomes
// media time outBase, and the first init segment goes out.
func (s *segmenter) begin(in time.Duration, wall time.Time, params *videoParams, avgBandwidth int) error {
	p := s.p
	lead := p.lead
	ts := lead.timescale
	s.inBase, s.wallBase, s.bandwidth = in, wall, avgBandwidth
	s.fdTicks = max(1, toTicks(p.frameDur, ts))
	s.targetTicks = toTicks(p.PartTarget(), ts)
	s.floorTicks = (s.targetTicks*85 + 99) / 100
	s.maxSegTicks = toTicks(segmentLimit(p.cfg.SegmentTarget), ts)
	if p.video != nil {
		// Cut at the first key frame past half the target, so 1 s GOPs make 1 s segments.
		s.minSegTicks = toTicks(p.cfg.SegmentTarget/2, ts) - s.fdTicks/2
	} else {
		// Audio frames are all key frames: make segments a whole number of parts instead.
		partTicks := int64(p.n) * s.fdTicks
		s.minSegTicks = max(1, toTicks(p.cfg.SegmentTarget, ts)/partTicks)*partTicks - s.fdTicks/2
	}
	// A gap longer than this is the input clock jumping, not frames missing.
	s.jumpTicks = max(10*s.fdTicks, toTicks(time.Second, ts))
	s.tolTicks = toTicks(time.Millisecond, ts) + 1
	s.segStart = toTicks(s.outBase, ts)
	s.partStart = s.segStart
	s.started = true
	if params != nil {
		s.cur = *params
	}
	return s.emitInit()
}

func (s *segmenter) push(f frame) error {
	p := s.p
	if f.video || p.lead == p.audio {
		return s.pushLead(f)
	}
	t := p.audio
	if s.capAudio(f) {
		return nil
	}
	dts, ok := s.audioDTS(t, f, false)
	if !ok {
		return nil
	}
	if t.pending != nil {
		t.finish(dts - t.pendingDTS)
	}
	s.place(t, f, dts)
	s.holdAudio(f)
	return nil
}

// pushLead places a frame of the leading track, cutting parts and segments before it.
func (s *segmenter) pushLead(f frame) error {
	p := s.p
	t := p.lead
	var dts int64
	var ok bool
	if f.video {
		dts, ok = s.videoDTS(t, f)
	} else {
		dts, ok = s.audioDTS(t, f, true)
	}
	if !ok {
		return nil
	}
	switch {
	case s.early:
		// The previous frame went out with its part, its duration foreseen: this one starts
		// the next part where that one ended, whatever its own timestamp says.
		s.early = false
		s.countSteady(dts - t.pendingDTS)
		dts = s.partStart
		if err := s.afterEarly(f); err != nil {
			return err
		}
	case t.pending != nil:
		s.countSteady(dts - t.pendingDTS)
		if dts-s.partStart > s.targetTicks && s.partFrames > 1 {
			// Frames are missing before f: the pending frame lasts so long that its part would
			// exceed PART-TARGET. End the part before it instead; this part may then be short,
			// but never too long.
			if err := s.partBeforePending(); err != nil {
				return err
			}
		}
		last := dts - t.pendingDTS
		t.finish(last)
		segSpan := dts - s.segStart
		var err error
		switch {
		case s.keyCuts(f, segSpan):
			err = s.cutSegment(dts, f, false)
		case segSpan+s.fdTicks > s.maxSegTicks:
			err = s.cutSegment(dts, f, true)
		case s.partEnds(dts-s.partStart, last):
			err = s.emitPart(dts, false)
		}
		if err != nil {
			return err
		}
	}
	if s.partFrames == 0 {
		s.independent = f.key
	}
	s.place(t, f, dts)
	s.partFrames++
	if !f.video {
		return nil
	}
	if f.key {
		if s.keyed {
			s.prevGop, s.gop = s.gop, dts-s.keyAt
		}
		s.keyed, s.keyAt = true, dts
	}
	if s.keyDue {
		s.waitKey(dts, f.key)
	}
	return s.emitEarly(t, dts)
}

// countSteady notes the interval since the previous lead frame: a run of nominal ones lets a
// part go out early.
func (s *segmenter) countSteady(interval int64) {
	if d := interval - s.fdTicks; d >= -s.tolTicks && d <= s.tolTicks {
		s.steady++
	} else {
		s.steady = 0
	}
}

// emitEarly sends the part being built out now, its last frame (the newest, at dts) lasting
// the nominal interval, when the video is steady enough to foresee that (a part of its n
// frames within PART-TARGET) and the frame after it cannot end the segment, as far as can be
// foreseen: a key frame would not end it yet (the segment is under half its target), or the
// key frames have come a fixed time apart twice and none is due. A part that may be its
// segment's last waits for the next frame, as without early parts: the playlist's preload
// hint must name the part that comes next, and a key frame may come a frame late.
func (s *segmenter) emitEarly(t *track, dts int64) error {
	p := s.p
	if !p.cfg.EarlyParts || t != p.video || s.steady < p.n || s.partFrames < p.n {
		return nil
	}
	end := dts + s.fdTicks
	if span := end - s.partStart; span > s.targetTicks || span < s.floorTicks {
		return nil
	}
	segSpan := end - s.segStart
	if segSpan+s.fdTicks+s.tolTicks > s.maxSegTicks {
		return nil // the next frame ends the segment, key frame or not, or may, a millisecond late
	}
	if s.keyDue && segSpan >= s.minSegTicks {
		return nil // the key frame asked for may be the next frame, and would end the segment
	}
	near := func(a, b int64) bool { return a-b <= 2*s.tolTicks && b-a <= 2*s.tolTicks }
	if segSpan >= s.minSegTicks && (s.gop == 0 || s.prevGop == 0 || !near(s.gop, s.prevGop) || near(end, s.keyAt+s.gop)) {
		return nil
	}
	t.finish(s.fdTicks)
	if err := s.emitPart(end, false); err != nil {
		return err
	}
	s.early = true
	return nil
}

// expectKey notes that the publisher has just been asked for a key frame.
func (s *segmenter) expectKey() {
	if !s.keyDue {
		s.keyDue, s.dueSince = true, -1
	}
}

// waitKey follows the wait for the key frame asked for at lead frame time dts, key if that
// frame is one. The frame written just after the request was encoded before it, so it is not
// the answer even when it is a key frame; a later key frame is. A publisher that has not
// answered within a second ignores such requests (not every WHIP client honours a PLI), and
// its parts go out early again.
func (s *segmenter) waitKey(dts int64, key bool) {
	switch {
	case s.dueSince < 0:
		s.dueSince = dts
	case key || dts-s.dueSince > toTicks(time.Second, s.p.lead.timescale):
		s.keyDue = false
	}
}

// afterEarly makes the segment decisions for lead frame f, the first after an early part,
// which pushLead would have made for f with the previous frame pending. Only what could not be
// foreseen ends the segment here: a key frame that came off the cadence (an encoder's scene
// cut), or one with new parameter sets. The early part was the segment's last, so it goes
// again marked Last, and the cadence must be seen twice again before a part that might end a
// segment goes out early.
func (s *segmenter) afterEarly(f frame) error {
	at := s.partStart
	if !s.keyCuts(f, at-s.segStart) {
		return nil
	}
	s.prevGop = 0
	if err := s.markLast(); err != nil {
		return err
	}
	return s.opened(at, f, false)
}

// keyCuts tells whether lead frame f, segSpan into its segment, starts the next one: a key
// frame past half the target, or one with new parameter sets.
func (s *segmenter) keyCuts(f frame, segSpan int64) bool {
	return f.key && (segSpan >= s.minSegTicks || s.newParams(f))
}

// newParams tells whether lead frame f carries parameter sets other than the current init's.
func (s *segmenter) newParams(f frame) bool {
	return f.params != nil && !f.params.equal(&s.cur)
}

// markLast ends the segment of the newest part, which went out early, before it was known to
// be the segment's last: it goes again marked Last, which the origin takes as the segment's
// end (a repeat of the newest part adds nothing else).
func (s *segmenter) markLast() error {
	p := s.p
	last := s.lastOut
	last.Last = true
	s.endSegment()
	if err := p.out.Part(p.ctx, p.cfg.Rendition, last); err != nil {
		return fmt.Errorf("output part %d.%d again as its segment's last: %w", last.MSN, last.Index, err)
	}
	return nil
}

// endSegment moves on to the next segment's number, the current one having ended.
func (s *segmenter) endSegment() {
	s.msn++
	s.index = 0
	s.discontinuity = false
	s.p.count(func(st *Stats) { st.Segments++ })
}

// partEnds tells whether the part being built, span long, ends before the frame that just
// came, the previous frame having lasted last. A part ends once it has its n frames, or when
// the next frame would likely carry it past PART-TARGET. The next interval is guessed to be
// the last one, which follows a source whose rate drifts (a browser under load sends fewer
// frames), unless that was a frame missing, which says nothing of the rate.
//
// A part under 85 % of PART-TARGET (rule P2) never ends on a guess: a browser's capture clock
// jitters by several milliseconds, so the next frame may fit after all. If it does not, the
// frames-missing rule in pushLead ends the part one frame later, and the short part is then
// the frame grid's doing. Frames that come faster than nominal (a burst after a hiccup) thus
// fill a part past its n.
func (s *segmenter) partEnds(span, last int64) bool {
	if span < s.floorTicks {
		return false
	}
	next := last
	if next > s.fdTicks*3/2 {
		next = s.fdTicks
	}
	return s.partFrames >= s.p.n || span+next > s.targetTicks
}

// partBeforePending sends the part being built up to the lead's pending frame, which starts
// the next part.
func (s *segmenter) partBeforePending() error {
	t := s.p.lead
	t.pending.Payload = bytes.Clone(t.pending.Payload) // emitPart recycles the arena
	if err := s.emitPart(t.pendingDTS, false); err != nil {
		return err
	}
	s.independent, s.partFrames = !t.pending.IsNonSyncSample, 1
	return nil
}

func (s *segmenter) cutSegment(at int64, f frame, forced bool) error {
	if err := s.emitPart(at, true); err != nil {
		return err
	}
	return s.opened(at, f, forced)
}

// opened starts the segment that begins with lead frame f, at lead-track time at.
func (s *segmenter) opened(at int64, f frame, forced bool) error {
	s.segStart = at
	if forced {
		s.p.count(func(st *Stats) { st.ForcedCuts++ })
		// Every cut of a stream with long GOPs is forced: say so once loudly, then quietly.
		level := slogLevel(s.loggedCuts)
		s.loggedCuts = true
		s.p.log.Log(context.Background(), level, "no key frame within the segment target; cut at a non-key frame",
			"msn", s.msn, "segmentTarget", s.p.cfg.SegmentTarget)
	}
	if s.newParams(f) {
		// New parameter sets (a publisher changed its resolution or profile) change the
		// encoding parameters, which HLS marks with a discontinuity. Amazon's IVS player does
		// not reconfigure its decoder from the new init segment: it keeps giving its decoder
		// the first one's with each key frame, and stops with a decode error, unless the key
		// frames carry the current parameter sets in-band after those. (An hvc1 sample entry
		// forbids in-band parameter sets; H.265 goes without.)
		s.cur, s.discontinuity, s.inBand = *f.params, true, !s.p.h265
		return s.emitInit()
	}
	return nil
}

// place makes f the pending sample of t, in the part being built.
func (s *segmenter) place(t *track, f frame, dts int64) {
	payload := f.payload
	if inBand := s.inBand && f.video && f.key; f.au != nil || inBand {
		start := len(s.arena)
		if inBand {
			for _, ps := range [][]byte{s.cur.sps, s.cur.pps} {
				s.arena = append(binary.BigEndian.AppendUint32(s.arena, uint32(len(ps))), ps...)
			}
		}
		if f.au != nil {
			s.arena = appendAVCC(s.arena, f.au, s.p.h265)
		} else {
			s.arena = append(s.arena, f.payload...) // a frame from the probe, already in AVCC form
		}
		payload = s.arena[start:len(s.arena):len(s.arena)]
	}
	sample := &fmp4.Sample{IsNonSyncSample: !f.key, Payload: payload}
	if f.video {
		own, ownDTS := s.ticks(t, f.pts), s.ticks(t, f.dts)
		s.shift = ownDTS - dts
		shown := own
		switch {
		case dts > ownDTS:
			// Decoded after its own time (it came sooner than the early part before it
			// foresaw): shown at its own time still, or once decoded if that is later. Moved
			// whole, a B-frame could be shown after a frame the input shows after it.
			shown = max(own, dts)
		case dts < ownDTS && own <= ownDTS:
			// Decoded before its own time (after an early part and a gap), in a stream
			// without B-frames: shown as much sooner, so that the frame before it is followed
			// with no hole (which stalls an MSE player). With B-frames it keeps its own time:
			// B-frames decoded after it fill the hole, and moved, it could be shown before them.
			shown = own - (ownDTS - dts)
		}
		sample.PTSOffset = int32(max(math.MinInt32, min(math.MaxInt32, shown-dts)))
	}
	t.pending, t.pendingDTS, t.pendingIn, t.pendingNominal = sample, dts, f.dts, f.nominal
}

// flush ends the stream: the pending samples get their nominal duration (a video frame placed
// off its own time, that corrected, so the stream ends where its input does) and the part they
// are in goes out as the last of its segment, in two parts if one would run past PART-TARGET.
// After an early part no video is pending: the audio that came after it (less than a video
// frame) is dropped, and the early part is sent again marked Last.
func (s *segmenter) flush() error {
	p := s.p
	lead := p.lead
	if s.early && lead.pending == nil {
		s.early = false
		return s.markLast()
	}
	if !s.started || lead.pending == nil {
		return nil
	}
	end := lead.pendingDTS + s.fdTicks
	if lead.pendingNominal > 0 {
		end = lead.pendingDTS + lead.pendingNominal
	} else if s.shift != 0 {
		// The last frame came off the time where the early part before it ended, where it
		// was placed: it lasts that much more (or less), as the frame after it would have
		// made it, so that the stream ends where its input does.
		end = max(lead.pendingDTS+1, end+s.shift)
	}
	if end-s.partStart > s.targetTicks && s.partFrames > 1 {
		// As pushLead does when frames are missing: the last frame goes in a part of its own
		// rather than carry this one past PART-TARGET.
		if err := s.partBeforePending(); err != nil {
			return err
		}
	}
	lead.finish(end - lead.pendingDTS)
	if a := p.audio; a != nil && a != lead && a.pending != nil {
		a.finish(a.pendingNominal)
	}
	return s.emitPart(end, true)
}

// emitPart writes the part being built, which ends at lead-track time end, to the output.
func (s *segmenter) emitPart(end int64, last bool) error {
	p := s.p
	ts := p.lead.timescale
	start := toDuration(s.partStart, ts)
	pdt := s.wallBase.Add(start - s.outBase)
	s.emitted = true
	part := media.Part{
		MSN:             s.msn,
		Index:           s.index,
		Duration:        toDuration(end-s.partStart, ts),
		Independent:     s.independent,
		Last:            last,
		Discontinuity:   s.discontinuity && s.index == 0,
		ProgramDateTime: pdt,
		Cues:            p.takeCues(s.index == 0, start, pdt),
	}
	buf := make([]byte, 0, s.partBytes())
	lo, hi := s.presentation(end)
	for _, c := range part.Cues {
		if c.AdBreak != nil {
			continue // carried by the playlists (SCTE35-OUT/IN), not by an ID3 emsg
		}
		var err error
		if buf, err = appendCue(buf, c, s.cueTime(c, lo, hi)); err != nil {
			return fmt.Errorf("part %d.%d: %w", s.msn, s.index, err)
		}
	}
	fp := fmp4.Part{SequenceNumber: s.seq}
	for _, t := range []*track{p.video, p.audio} {
		if t == nil || len(t.samples) == 0 {
			continue
		}
		fp.Tracks = append(fp.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: uint64(t.base), Samples: t.samples})
	}
	w := &writeSeeker{b: buf, pos: len(buf)}
	if err := fp.Marshal(w); err != nil {
		return fmt.Errorf("part %d.%d: marshal: %w", s.msn, s.index, err)
	}
	part.Data = w.b

	for _, t := range []*track{p.video, p.audio} {
		if t == nil || len(t.samples) == 0 {
			continue
		}
		t.end = t.base
		for _, smp := range t.samples {
			t.end += int64(smp.Duration)
		}
		t.emitted = true
		clear(t.samples)
		t.samples = t.samples[:0]
	}
	s.arena = s.arena[:0]
	s.partOut()
	s.seq++
	s.partStart, s.partFrames = end, 0
	if last {
		s.endSegment()
	} else {
		s.index++
	}
	p.count(func(st *Stats) {
		st.Parts++
		switch target := p.PartTarget(); {
		case part.Duration > target:
			st.LongParts++
		case !last && !part.Independent && part.Duration*100 < target*85:
			st.ShortParts++
		}
	})
	s.lastOut = part
	if err := p.out.Part(p.ctx, p.cfg.Rendition, part); err != nil {
		return fmt.Errorf("output part %d.%d: %w", part.MSN, part.Index, err)
	}
	return nil
}

// partBytes is an upper bound of the size of the part being built, so that its buffer is
// allocated once: the payloads, plus moof overhead (box headers, one trun entry per sample)
// and the emsg boxes of a few cues.
func (s *segmenter) partBytes() int {
	n := 1024
	for _, t := range []*track{s.p.video, s.p.audio} {
		if t == nil {
			continue
		}
		n += 128 + 16*len(t.samples)
		for _, smp := range t.samples {
			n += len(smp.Payload)
		}
	}
	return n
}

// presentation returns the presentation interval of the part being built, which ends at
// lead-track time end, in 90 kHz ticks. With B-frames it starts after the decode interval,
// by the first frame's composition offset.
func (s *segmenter) presentation(end int64) (lo, hi int64) {
	t := s.p.lead
	lo, hi = s.partStart, end
	dts := t.base
	for i, smp := range t.samples {
		pts := dts + int64(smp.PTSOffset)
		if i == 0 || pts < lo {
			lo = pts
		}
		hi = max(hi, pts+int64(smp.Duration))
		dts += int64(smp.Duration)
	}
	return toTicks(toDuration(lo, t.timescale), videoTimescale), toTicks(toDuration(hi, t.timescale), videoTimescale)
}

// cueTime maps a cue's wall-clock time onto the media timeline in 90 kHz ticks, clamped into
// the presentation interval [lo, hi) of the part that carries it, as the AOM spec requires:
// a cue that arrived late plays at the part's start rather than never.
func (s *segmenter) cueTime(c media.Cue, lo, hi int64) uint64 {
	t := toTicks(s.outBase+c.Time.Sub(s.wallBase), videoTimescale)
	return uint64(max(lo, min(max(hi-1, lo), t)))
}

func (s *segmenter) emitInit() error {
	p := s.p
	var tracks []*fmp4.InitTrack
	r := media.Rendition{Name: p.cfg.Rendition}
	var codecNames []string
	if p.video != nil {
		var c codecs.Codec = &codecs.H264{SPS: s.cur.sps, PPS: s.cur.pps}
		if p.h265 {
			c = &codecs.H265{VPS: s.cur.vps, SPS: s.cur.sps, PPS: s.cur.pps}
		}
		info, err := p.describeVideo(&s.cur)
		if err != nil {
			return err
		}
		tracks = append(tracks, &fmp4.InitTrack{ID: p.video.id, TimeScale: uint32(p.video.timescale), Codec: c})
		codecNames = append(codecNames, info.codecs)
		r.Width, r.Height = info.width, info.height
		r.FrameRate = math.Round(float64(time.Second)/float64(p.frameDur)*1000) / 1000
	}
	if p.audio != nil {
		tracks = append(tracks, &fmp4.InitTrack{ID: p.audio.id, TimeScale: uint32(p.audio.timescale), Codec: p.audioCode})
		codecNames = append(codecNames, audioCodecs(p.audioCode))
	}
	b, err := marshalInit(tracks)
	if err != nil {
		return err
	}
	// A successor whose init is byte-identical keeps the generation, so the origin need not
	// switch EXT-X-MAP after a reconnect.
	if s.inits > 0 || p.cfg.Start.resumed() && !bytes.Equal(b, p.cfg.Start.Init) {
		s.gen++
	}
	if s.inits > 0 {
		p.log.Info("video parameters changed mid-stream; new init segment", "generation", s.gen, "width", r.Width, "height", r.Height, "codecs", joinCodecs(codecNames))
	}
	s.inits++
	s.initBytes = b
	r.Codecs = joinCodecs(codecNames)
	r.AverageBandwidth = s.bandwidth
	r.Bandwidth = s.bandwidth * 5 / 4 // BANDWIDTH is a peak: leave room above the mean
	r.Generation = s.gen
	if err := p.out.Init(p.ctx, r, b); err != nil {
		return fmt.Errorf("output init generation %d: %w", s.gen, err)
	}
	return nil
}

// state reports where a successor continues.
func (s *segmenter) state() Start {
	p := s.p
	st := p.cfg.Start
	st.PartTarget = p.PartTarget()
	st.AdBreak, st.AdBreakAt = p.ads.open, p.ads.outAt
	if s.inits == 0 {
		return st
	}
	st.MSN, st.Sequence, st.Generation, st.Init = s.msn, s.seq, s.gen, s.initBytes
	if s.index > 0 {
		st.MSN++ // the open segment's number is taken
	}
	for _, t := range []*track{p.video, p.audio} {
		if t != nil && t.emitted {
			st.Time = max(st.Time, toDuration(t.end, t.timescale))
		}
	}
	return st
}
