package transcode

import (
	"slices"
	"sync"
	"time"
)

// segmentStart is where a source segment begins: the input key frame it starts with, its MSN,
// and its place on the media and wall-clock timelines. A transcoder run that starts there
// gives its packagers this as their Start, which makes their segments the source's.
type segmentStart struct {
	msn      uint64
	pts, dts time.Duration // input timestamps of the key frame
	media    time.Duration // the segment's media time (tfdt)
	wall     time.Time     // its PROGRAM-DATE-TIME
}

// frame is one input access unit as the ladder keeps it.
type frame struct {
	video    bool
	pts, dts time.Duration
	au       [][]byte // video: owned NALUs, parameter sets first at key frames
	audio    []byte   // audio: one AAC access unit or Opus packet
	// mark is, for video, the newest audio the source packager had been given before this
	// frame (-1 for none). Giving each rendition's packager the same audio before the frame
	// puts the same audio frames in every rendition's parts, so a player that switches
	// rendition between two parts hears no gap and no repeat.
	mark time.Duration
}

func (f *frame) size() int {
	n := len(f.audio) + 64
	for _, nalu := range f.au {
		n += len(nalu) + 8
	}
	return n
}

// maxReplayBytes bounds the input kept for a restart: a segment of 8.5 Mb/s video is about
// 2 MB, so only a source without key frames for a very long time reaches it. The replay is
// then invalid until the next segment start.
const maxReplayBytes = 32 << 20

// replay keeps the input since the newest source segment that starts on a key frame, so that
// a transcoder (re)started mid-segment can begin on that segment's boundary.
type replay struct {
	start  segmentStart
	valid  bool
	frames []frame
	bytes  int
}

// reset starts a new segment. Audio already received that plays from the key frame on stays:
// RTMP interleaving delivers some of it before the key frame itself.
func (r *replay) reset(s segmentStart) {
	kept := r.frames[:0]
	n := 0
	for _, f := range r.frames {
		if !f.video && f.pts >= s.dts {
			kept = append(kept, f)
			n += f.size()
		}
	}
	clear(r.frames[len(kept):])
	r.frames, r.bytes, r.start, r.valid = kept, n, s, true
}

func (r *replay) add(f frame) {
	if !r.valid {
		return
	}
	if r.bytes += f.size(); r.bytes > maxReplayBytes {
		r.valid, r.frames, r.bytes = false, nil, 0
		return
	}
	r.frames = append(r.frames, f)
}

// fedIndex remembers the frames given to ffmpeg in one run by presentation timestamp, so that
// each output frame is mapped back to the input frame it was encoded from, exactly, whatever
// rounding ffmpeg's time bases apply.
type fedIndex struct {
	mu      sync.Mutex
	entries []fed // ascending pts
}

type fed struct {
	pts  int64         // 90 kHz, on the run's timeline
	mark time.Duration // the frame's audio mark
}

// maxFed bounds the index; a run that falls this far behind has long been ended for lag.
const maxFed = 4096

func (x *fedIndex) add(pts int64, mark time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	// B-frames arrive out of presentation order, but only by a few frames.
	i := len(x.entries)
	for i > 0 && x.entries[i-1].pts > pts {
		i--
	}
	x.entries = slices.Insert(x.entries, i, fed{pts, mark})
	if len(x.entries) > maxFed {
		x.entries = append(x.entries[:0], x.entries[maxFed/2:]...)
	}
}

func (x *fedIndex) search(pts int64) int {
	i, _ := slices.BinarySearchFunc(x.entries, pts, func(e fed, p int64) int {
		switch {
		case e.pts < p:
			return -1
		case e.pts > p:
			return 1
		}
		return 0
	})
	return i
}

// nearest returns the fed frame whose timestamp is closest to pts.
func (x *fedIndex) nearest(pts int64) (fed, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.entries) == 0 {
		return fed{}, false
	}
	i := x.search(pts)
	best := -1
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(x.entries) && (best < 0 || abs64(x.entries[j].pts-pts) < abs64(x.entries[best].pts-pts)) {
			best = j
		}
	}
	return x.entries[best], true
}

// forget drops frames older than pts (the slowest output's position).
func (x *fedIndex) forget(pts int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if i := x.search(pts); i > 64 {
		x.entries = append(x.entries[:0], x.entries[i-64:]...)
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// ticks90 converts an input offset to 90 kHz ticks, rounding to nearest. RTMP timestamps are
// whole milliseconds, 90 ticks each, so the conversion is exact both ways.
func ticks90(d time.Duration) int64 {
	return (int64(d)*9 + 50_000) / 100_000
}

func fromTicks90(t int64) time.Duration {
	return time.Duration(t * 100_000 / 9)
}

// unwrap33 extends a 33-bit MPEG-TS timestamp to the one nearest prev.
func unwrap33(prev, ts int64) int64 {
	const mod = int64(1) << 33
	d := (ts - prev) % mod
	if d < 0 {
		d += mod
	}
	if d >= mod/2 {
		d -= mod
	}
	return prev + d
}
