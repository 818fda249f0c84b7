package origin

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"glasscast/media"
	"glasscast/origin/playlist"
)

// segment is one media segment: the concatenation of its parts. Its part metadata is kept in
// the form the playlist renderer takes, so rendering copies nothing.
type segment struct {
	msn           uint64
	generation    int
	pdt           time.Time
	discontinuity bool
	meta          []playlist.Part
	data          [][]byte // data[i] is part i; appended only, never modified
	duration      time.Duration
	size          int
	complete      bool
	// gap marks a segment the origin never received (a publisher's push was cut off and
	// resumed at a later segment): listed with EXT-X-GAP so that MSNs keep their positions,
	// and never served.
	gap       bool
	cues      []playlist.DateRange
	removedAt time.Time // when it left the window
}

// removedCue remembers a date range that left the playlist, for RECENTLY-REMOVED-DATERANGES.
type removedCue struct {
	id string
	at time.Time
}

// rendition is one variant's state: its init segments and a sliding window of segments.
// All fields are guarded by the owning broadcast's mutex.
type rendition struct {
	desc  media.Rendition
	inits map[int][]byte // by generation

	segs      []*segment // the window, oldest first; only the last may be in progress
	retired   []*segment // left the window, downloadable until removedAt + retention
	windowDur time.Duration
	discSeq   uint64
	removed   []removedCue

	peakBPS        float64 // highest segment bitrate seen; BANDWIDTH never drops below it
	allIndependent bool    // every segment so far started with an independent part
	bytes          int64   // init and part bytes held

	// changed is closed and replaced whenever the rendition gains a part or its broadcast
	// ends: the wake-up for every request waiting on it.
	changed chan struct{}
}

func newRendition(desc media.Rendition) *rendition {
	return &rendition{
		desc:           desc,
		inits:          make(map[int][]byte),
		allIndependent: true,
		changed:        make(chan struct{}),
	}
}

func (r *rendition) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// tail is the newest segment, in progress or complete.
func (r *rendition) tail() *segment {
	if len(r.segs) == 0 {
		return nil
	}
	return r.segs[len(r.segs)-1]
}

// last is the position of the newest part.
func (r *rendition) last() (msn uint64, part int, ok bool) {
	t := r.tail()
	if t == nil {
		return 0, 0, false
	}
	return t.msn, len(t.data) - 1, true
}

// lastComplete is the MSN of the newest complete segment.
func (r *rendition) lastComplete() (uint64, bool) {
	for i := len(r.segs) - 1; i >= 0; i-- {
		if r.segs[i].complete {
			return r.segs[i].msn, true
		}
	}
	return 0, false
}

// hasContent reports whether a playlist can list anything: a part for LL-HLS, a complete
// segment otherwise.
func (r *rendition) hasContent(low bool) bool {
	if low {
		return len(r.segs) > 0
	}
	_, ok := r.lastComplete()
	return ok
}

// reached reports whether the rendition holds part (msn, part) or anything later. A part index
// past the last part of a complete segment M names part 0 of M+1, and lexical order on
// (msn, part) gives exactly that.
func (r *rendition) reached(msn uint64, part int) bool {
	m, p, ok := r.last()
	return ok && (m > msn || m == msn && p >= part)
}

// segment finds a segment in the window or among the retired ones.
func (r *rendition) segment(msn uint64) *segment {
	if len(r.segs) > 0 && msn >= r.segs[0].msn {
		if i := msn - r.segs[0].msn; i < uint64(len(r.segs)) {
			return r.segs[i]
		}
		return nil
	}
	for _, s := range r.retired {
		if s.msn == msn {
			return s
		}
	}
	return nil
}

// partsPerSegment estimates the parts in a segment from the newest complete one.
func (r *rendition) partsPerSegment(td, pt time.Duration) int {
	for i := len(r.segs) - 1; i >= 0; i-- {
		if r.segs[i].complete && !r.segs[i].gap {
			return len(r.segs[i].data)
		}
	}
	if pt > 0 {
		return max(1, int(math.Ceil(float64(td)/float64(pt))))
	}
	return 1
}

// windowLimits bounds a rendition's window.
type windowLimits struct {
	segments int           // complete segments listed
	minDur   time.Duration // never list less than this (P13: three target durations)
	target   time.Duration // EXT-X-TARGETDURATION: the longest a gap segment may be listed
}

// appendPart adds p and returns how many bytes the rendition now holds in addition. A part that
// repeats one already held with the same bytes is accepted and ignored, so that a publisher can
// retry after a lost response.
func (r *rendition) appendPart(p *media.Part, now time.Time, lim windowLimits) (int64, error) {
	t := r.tail()
	switch {
	case t == nil:
		if p.Index != 0 {
			// A rendition starts at a segment boundary: a publisher that joins (or an
			// origin that restarts) mid-segment waits for the next one.
			return 0, nil
		}
	case p.MSN == t.msn:
		if p.Index < len(t.data) {
			if err := duplicate(t, p); err != nil {
				return 0, err
			}
			if p.Last && p.Index == len(t.data)-1 && !t.complete {
				// A publisher that sent its newest part before knowing it ended the segment
				// (an early part, then a key frame or the end of its stream) says so by
				// sending it again.
				r.completeSegment(t, now, lim)
			}
			return 0, nil
		}
		if t.complete {
			return 0, fmt.Errorf("part %d.%d: segment already complete: %w", p.MSN, p.Index, ErrOutOfOrder)
		}
		if p.Index > len(t.data) {
			return 0, fmt.Errorf("part %d.%d: expected part %d: %w", p.MSN, p.Index, len(t.data), ErrOutOfOrder)
		}
		added := r.addPart(t, p)
		if p.Last {
			r.completeSegment(t, now, lim)
		}
		return added, nil
	case p.MSN < t.msn:
		if s := r.segment(p.MSN); s != nil && p.Index < len(s.data) {
			return 0, duplicate(s, p)
		}
		return 0, fmt.Errorf("part %d.%d: older than segment %d: %w", p.MSN, p.Index, t.msn, ErrOutOfOrder)
	case p.MSN > t.msn+1 && p.Index != 0:
		// MSNs name playlist positions; a publisher that missed segments resumes at a
		// segment boundary, and the missed ones are listed as gaps.
		return 0, fmt.Errorf("part %d.%d: segment %d missing and part 0 of %d too: %w", p.MSN, p.Index, t.msn+1, p.MSN, ErrOutOfOrder)
	case p.Index != 0:
		return 0, fmt.Errorf("part %d.%d: segment must start with part 0: %w", p.MSN, p.Index, ErrOutOfOrder)
	}

	if t != nil && !t.complete {
		// The publisher moved on without marking the last part (it reconnected mid-segment):
		// the segment ends where its parts end.
		r.completeSegment(t, now, lim)
	}
	if t != nil && p.MSN > t.msn+1 {
		r.fillGap(t, p, now, lim)
	}
	s := &segment{
		msn:           p.MSN,
		generation:    r.desc.Generation,
		pdt:           p.ProgramDateTime,
		discontinuity: p.Discontinuity,
	}
	r.segs = append(r.segs, s)
	added := r.addPart(s, p)
	if p.Last {
		r.completeSegment(s, now, lim)
	}
	return added, nil
}

// fillGap lists the segments between t and p's, which this origin never received, as gap
// segments (EXT-X-GAP). A gap keeps every MSN at its position, so names stay the same on every
// origin of the stream and players that read another origin's playlist agree on them; and
// unlike a renumbering or an EXT-X-DISCONTINUITY it tells a player the truth: the media
// timeline continues (the part after the gap carries the timestamps the publisher gave it),
// only these segments are missing. Their durations share the wall-clock time between t's end
// and p's start, each at most a target duration. A gap longer than the window lists only its
// newest segments; what precedes it leaves the window.
func (r *rendition) fillGap(t *segment, p *media.Part, now time.Time, lim windowLimits) {
	n := p.MSN - t.msn - 1
	end := t.pdt.Add(t.duration)
	per := lim.target
	if missing := p.ProgramDateTime.Sub(end); !t.pdt.IsZero() && !p.ProgramDateTime.IsZero() && missing > 0 {
		per = min(missing/time.Duration(n), lim.target)
	}
	per = max(per, time.Millisecond)
	first := t.msn + 1
	if keep := uint64(max(lim.segments, 1)); n > keep {
		// The segments held leave the window at once, as the sliding would have made them.
		for _, old := range r.segs {
			r.retire(old, now)
		}
		r.segs = r.segs[:0]
		r.windowDur = 0
		first = p.MSN - keep
	}
	pdt := p.ProgramDateTime.Add(-time.Duration(p.MSN-first) * per)
	if p.ProgramDateTime.IsZero() {
		pdt = end
	}
	for msn := first; msn < p.MSN; msn++ {
		g := &segment{msn: msn, generation: r.desc.Generation, pdt: pdt, gap: true, duration: per}
		r.segs = append(r.segs, g)
		r.completeSegment(g, now, lim)
		pdt = pdt.Add(per)
	}
}

func duplicate(s *segment, p *media.Part) error {
	if bytes.Equal(s.data[p.Index], p.Data) {
		return nil
	}
	return fmt.Errorf("part %d.%d: already held with other bytes: %w", p.MSN, p.Index, ErrOutOfOrder)
}

func (r *rendition) addPart(s *segment, p *media.Part) int64 {
	s.meta = append(s.meta, playlist.Part{Duration: p.Duration, Independent: p.Independent})
	s.data = append(s.data, p.Data)
	s.duration += p.Duration
	s.size += len(p.Data)
	for i, c := range p.Cues {
		fallback := "cue-" + strconv.FormatUint(p.MSN, 10) + "-" + strconv.Itoa(p.Index) + "-" + strconv.Itoa(i)
		d := playlist.DateRange{ID: playlist.SafeID(c.ID, fallback), Start: c.Time, Text: c.Text}
		if a := c.AdBreak; a != nil {
			d.Start = a.Start
			d.Ad = &playlist.AdBreak{In: a.In, Planned: a.Planned, Duration: a.Duration, SCTE35: a.SCTE35}
		}
		s.cues = append(s.cues, d)
	}
	r.bytes += int64(len(p.Data))
	return int64(len(p.Data))
}

func (r *rendition) completeSegment(s *segment, now time.Time, lim windowLimits) {
	s.complete = true
	r.windowDur += s.duration
	if s.duration > 0 {
		r.peakBPS = max(r.peakBPS, float64(s.size)*8/s.duration.Seconds())
	}
	if len(s.meta) > 0 && !s.meta[0].Independent {
		r.allIndependent = false
	}
	r.slide(now, lim)
}

// slide removes the oldest complete segments beyond the window, keeping at least minDur listed
// unless the window grows four times past its size (tiny segments must not pin memory).
func (r *rendition) slide(now time.Time, lim windowLimits) {
	for len(r.segs) > 1 && r.segs[0].complete {
		complete := len(r.segs)
		if !r.segs[len(r.segs)-1].complete {
			complete--
		}
		if complete <= lim.segments {
			return
		}
		old := r.segs[0]
		if r.windowDur-old.duration < lim.minDur && complete <= 4*lim.segments {
			return
		}
		r.segs = slices.Delete(r.segs, 0, 1)
		r.windowDur -= old.duration
		r.retire(old, now)
	}
}

// retire moves a segment that left the window to the retired ones.
func (r *rendition) retire(old *segment, now time.Time) {
	old.removedAt = now
	r.retired = append(r.retired, old)
	if old.discontinuity {
		r.discSeq++
	}
	for _, c := range old.cues {
		// An ad break's splice in shares its ID with the splice out: the ID is removed only
		// when neither is listed any more.
		if !slices.ContainsFunc(r.segs, func(s *segment) bool {
			return slices.ContainsFunc(s.cues, func(d playlist.DateRange) bool { return d.ID == c.ID })
		}) {
			r.removed = append(r.removed, removedCue{id: c.ID, at: now})
		}
	}
}

// prune drops retired segments older than retention and init generations no held segment
// needs, and forgets removed cues older than keepCues. It returns the bytes released.
func (r *rendition) prune(now time.Time, retention, keepCues time.Duration) int64 {
	var freed int64
	n := 0
	for n < len(r.retired) && !now.Before(r.retired[n].removedAt.Add(retention)) {
		freed += int64(r.retired[n].size)
		n++
	}
	if n > 0 {
		r.retired = slices.Delete(r.retired, 0, n)
	}
	c := 0
	for c < len(r.removed) && now.Sub(r.removed[c].at) > keepCues {
		c++
	}
	if c > 0 {
		r.removed = slices.Delete(r.removed, 0, c)
	}

	oldest := r.desc.Generation
	if len(r.retired) > 0 {
		oldest = r.retired[0].generation
	} else if len(r.segs) > 0 {
		oldest = r.segs[0].generation
	}
	for g, b := range r.inits {
		if g < oldest && g != r.desc.Generation {
			delete(r.inits, g)
			freed += int64(len(b))
		}
	}
	r.bytes -= freed
	return freed
}

// finish completes the segment in progress when the broadcast ends, so that its playlists end
// with whole segments and streamed segment responses end cleanly.
func (r *rendition) finish(now time.Time, lim windowLimits) {
	if t := r.tail(); t != nil && !t.complete {
		r.completeSegment(t, now, lim)
	}
	r.notify()
}

// averageBPS is the mean bitrate of the complete segments in the window.
func (r *rendition) averageBPS() float64 {
	if r.windowDur <= 0 {
		return 0
	}
	size := 0
	for _, s := range r.segs {
		if s.complete {
			size += s.size
		}
	}
	return float64(size) * 8 / r.windowDur.Seconds()
}
