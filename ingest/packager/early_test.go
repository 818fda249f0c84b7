package packager

import (
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"glasscast/media"
)

// earlyRun packages in with Config.EarlyParts, one unit at a time, and notes for each part how
// many video frames had been written when it came out.
type earlyRun struct {
	rec  *recorder
	p    *Packager
	fed  []int // video frames written when each part came out; -1 for those Close sent
	held []int // video frames in each part
}

func runEarly(t *testing.T, in input, cfg Config) *earlyRun {
	t.Helper()
	cfg.EarlyParts = true
	r := &earlyRun{rec: &recorder{implicitEnds: true}}
	video := 0
	closing := false
	r.rec.onPart = func(p media.Part) {
		var ps fmp4.Parts
		if err := ps.Unmarshal(p.Data); err != nil {
			t.Fatalf("part %d.%d: %v", p.MSN, p.Index, err)
		}
		n := 0
		for _, tr := range ps[0].Tracks {
			if tr.ID == 1 {
				n = len(tr.Samples)
			}
		}
		fed := video
		if closing {
			fed = -1
		}
		r.fed, r.held = append(r.fed, fed), append(r.held, n)
	}
	var err error
	if r.p, err = New(cfg, in.video, in.audio, r.rec); err != nil {
		t.Fatal(err)
	}
	for i, u := range in.units {
		if u.video {
			video++
		}
		feed(t, r.p, in, in.units[i:i+1])
	}
	closing = true
	if err := r.p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	return r
}

// early tells which parts came out with their last frame rather than the frame after it.
func (r *earlyRun) early() []bool {
	out := make([]bool, len(r.fed))
	sum := 0
	for i := range r.fed {
		sum += r.held[i]
		out[i] = r.fed[i] == sum
	}
	return out
}

// TestEarlyParts: a real x264 encode with B-frames and AAC, 30 fps, a key frame every second.
// Once two GOPs of the same length have shown the key frames' cadence, every part goes out
// with its last frame, one frame interval before a packager without EarlyParts could send it,
// and segments still end with parts marked Last at each key frame. Everything else is what
// the packager makes without early parts: the same parts and segments, a continuous timeline,
// and a stream that decodes whole.
func TestEarlyParts(t *testing.T) {
	in := readTS(t, encode(t, 6, x264("640x360", "30", 30, "-bf", "2"), aac()))
	wall := fixedClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r := runEarly(t, in, Config{SegmentTarget: time.Second, Now: wall})
	rec := r.rec
	rec.implicitEnds = false // every segment's end is foreseen: each must be marked Last
	checkParts(t, rec, r.p.PartTarget(), time.Second)

	early := r.early()
	late := 0
	for i, e := range early {
		if !e && r.fed[i] > 2*30+6 { // after the third key frame and one part to steady (or at Close)
			late++
			t.Errorf("part %d.%d (%d frames) came out after frame %d, not with its last", rec.parts[i].MSN, rec.parts[i].Index, r.held[i], r.fed[i])
		}
	}
	if n := len(early); n < 25 || late > 0 {
		t.Errorf("%d parts, %d late", n, late)
	}

	// Without early parts the same stream makes the same parts, each one frame later.
	plain, prec := packAll(t, Config{SegmentTarget: time.Second, Now: wall}, in, true)
	if len(prec.parts) != len(rec.parts) {
		t.Fatalf("%d parts, %d without early parts", len(rec.parts), len(prec.parts))
	}
	for i, p := range rec.parts {
		q := prec.parts[i]
		if p.MSN != q.MSN || p.Index != q.Index || p.Last != q.Last || p.Independent != q.Independent ||
			(p.Duration-q.Duration).Abs() > time.Millisecond || p.ProgramDateTime.Sub(q.ProgramDateTime).Abs() > time.Millisecond {
			t.Errorf("part %d: %d.%d %v last %v, without early parts %d.%d %v last %v", i,
				p.MSN, p.Index, p.Duration, p.Last, q.MSN, q.Index, q.Duration, q.Last)
		}
	}
	if st, pst := r.p.Stats(), plain.Stats(); st.Segments != pst.Segments || st.ForcedCuts != 0 || st.LongParts+st.ShortParts != 0 {
		t.Errorf("stats %+v, without early parts %+v", st, pst)
	}

	_, frames, dur := ffprobe(t, rec.file(t))
	if frames["video"] != countVideo(in.units) {
		t.Errorf("ffprobe decoded %d video frames, fed %d", frames["video"], countVideo(in.units))
	}
	if frames["audio"] < 6*48000/1024-3 {
		t.Errorf("ffprobe decoded %d audio frames", frames["audio"])
	}
	if (dur - 6*time.Second).Abs() > 2*time.Millisecond {
		t.Errorf("video duration %v, want 6s", dur)
	}
}

// TestEarlyPartsUnforeseen: the video does what early parts cannot foresee. A scene cut puts a
// key frame where a part has just gone out early: its segment ends there all the same, though
// the part before is not marked Last, and no part goes out early again until the cadence is
// back. A frame goes missing right after an early part: the next one takes the missing
// frame's place and time. A key frame foreseen does not come: the segment the early part ended
// starts at a non-key frame, a forced cut. Through all of it the timeline stays continuous,
// and no part breaks P2. (Synthetic frames, so that each lands where the test needs it: their
// slices are filler, which no decoder reads.)
func TestEarlyPartsUnforeseen(t *testing.T) {
	const fps = 30
	// The scene cut is 18 frames into a 1 s segment, at a part boundary; as x264 does, the
	// encoder counts its next key frames from there: 168, 198 and on. Frame 216 is the first of
	// a part. Key frame 318 is due, and does not come.
	s := synth{num: fps, den: 1, gop: fps, frames: 12 * fps, audio: true,
		keys: map[int]bool{}, nonKeys: map[int]bool{318: true}, drop: map[int]bool{216: true}}
	for i := 138; i < s.frames; i += fps {
		s.keys[i] = true
		s.nonKeys[i+12] = true
	}
	in := s.input()
	r := runEarly(t, in, Config{SegmentTarget: time.Second})
	rec := r.rec
	checkParts(t, rec, r.p.PartTarget(), time.Second)

	early := r.early()
	var implicit, forced []uint64
	for i, p := range rec.parts {
		if i > 0 && p.Index == 0 && !rec.parts[i-1].Last {
			implicit = append(implicit, p.MSN)
			if !early[i-1] {
				t.Errorf("part %d.%d ended its segment unmarked but was not early", rec.parts[i-1].MSN, rec.parts[i-1].Index)
			}
		}
		if p.Index == 0 && !p.Independent {
			forced = append(forced, p.MSN)
		}
	}
	// The segment the scene cut ends (frames 120-137) is the only one not marked Last.
	if len(implicit) != 1 {
		t.Errorf("segments ended by a part not marked Last: %v, want one (the scene cut's)", implicit)
	}
	if len(forced) != 1 || r.p.Stats().ForcedCuts != 1 {
		t.Errorf("segments starting at a non-key frame: %v (ForcedCuts %d), want one", forced, r.p.Stats().ForcedCuts)
	}
	// After the scene cut the key frames' cadence is known again only from frame 198 (GOPs
	// 138-168 and 168-198): no part ends early between. Nor after key frame 318 failed to come,
	// until 378 (GOPs 318-348, 348-378), past the end.
	sum := 0
	for i := range rec.parts {
		sum += r.held[i]
		if early[i] && (sum > 138 && sum <= 198 || sum > 318) {
			t.Errorf("part %d.%d (frames to %d) early while the cadence was unknown", rec.parts[i].MSN, rec.parts[i].Index, sum)
		}
	}
	if st := r.p.Stats(); st.LongParts+st.ShortParts != 0 || st.DroppedVideo != 0 {
		t.Errorf("stats %+v", st)
	}
	if total := rec.duration(); (total - 12*time.Second).Abs() > time.Millisecond {
		t.Errorf("parts last %v in all, want 12s: the missing frame's time must stay on the timeline", total)
	}
}

// TestEarlyPartsEndOfStream: the stream ends right after an early part that did not end its
// segment. Close sends that part again marked Last, and the successor a reconnecting publisher
// gets starts the next segment.
func TestEarlyPartsEndOfStream(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 30, frames: 3*30 + 12, audio: true}.input() // ends after part 3.1
	r := runEarly(t, in, Config{SegmentTarget: time.Second})
	rec := r.rec
	n := len(rec.parts)
	if n == 0 || r.fed[n-1] != 3*30+12 || rec.repeats != 1 {
		t.Fatalf("%d parts, the last out after frame %d, %d repeats; want it out with frame %d and sent again", n, r.fed[n-1], rec.repeats, 3*30+12)
	}
	if p := rec.parts[n-1]; p.Index != 1 || !p.Last {
		t.Errorf("last part %d.%d, Last %v", p.MSN, p.Index, p.Last)
	}
	rec.implicitEnds = false
	checkParts(t, rec, r.p.PartTarget(), time.Second)
	if st := r.p.State(); st.MSN != rec.parts[n-1].MSN+1 {
		t.Errorf("a successor starts at segment %d, want %d", st.MSN, rec.parts[n-1].MSN+1)
	}
}
