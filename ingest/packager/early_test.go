package packager

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
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

// asks are the video frames (numbered from 0) before whose write the packager is told that the
// publisher was asked for a key frame (ExpectKeyFrame).
func runEarly(t *testing.T, in input, cfg Config, asks ...int) *earlyRun {
	t.Helper()
	cfg.EarlyParts = true
	r := &earlyRun{rec: &recorder{implicitEnds: true}}
	video := 0
	closing := false
	r.rec.onPart = func(p media.Part) {
		n := videoFrames(t, p)
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
			if slices.Contains(asks, video) {
				r.p.ExpectKeyFrame()
			}
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

// videoFrames counts the video samples in part p.
func videoFrames(t *testing.T, p media.Part) int {
	t.Helper()
	var ps fmp4.Parts
	if err := ps.Unmarshal(p.Data); err != nil {
		t.Fatalf("part %d.%d: %v", p.MSN, p.Index, err)
	}
	for _, tr := range ps[0].Tracks {
		if tr.ID == 1 {
			return len(tr.Samples)
		}
	}
	return 0
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
// Once a part's worth of frames has come at the nominal interval, parts go out with their last
// frame, one frame interval before a packager without EarlyParts could send them, except those
// that may end their segment: past half the segment a key frame would end it, so such a part
// goes out early only once two GOPs of the same length have shown the key frames' cadence and
// no key frame is due after it. A segment's last part waits for its key frame, as without
// early parts, so no part is sent twice. Everything else is what the packager makes without
// early parts: the same parts and segments, a continuous timeline, and a stream that decodes
// whole.
func TestEarlyParts(t *testing.T) {
	in := readTS(t, encode(t, 6, x264("640x360", "30", 30, "-bf", "2"), aac()))
	wall := fixedClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r := runEarly(t, in, Config{SegmentTarget: time.Second, Now: wall})
	rec := r.rec
	rec.implicitEnds = false // every segment's end must be marked Last
	checkParts(t, rec, r.p.PartTarget(), time.Second)

	early := r.early()
	n := 0
	for i, e := range early {
		p := rec.parts[i]
		cadence := r.fed[i] > 2*30 // key frames 0, 30 and 60 seen
		pastHalf := p.Index >= 2   // the part ends 0.6 s or more into its 1 s segment
		// The first part's frames measure the interval.
		want := i > 0 && !p.Last && (cadence || !pastHalf)
		if e != want {
			t.Errorf("part %d.%d (%d frames, Last %v) came out after frame %d: early %v, want %v", p.MSN, p.Index, r.held[i], p.Last, r.fed[i], e, want)
		}
		if e {
			n++
		}
	}
	if n < 18 || len(rec.repeated) > 0 {
		t.Errorf("%d of %d parts early, parts sent again %v (want none)", n, len(early), rec.repeated)
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
// key frame where a part has just gone out early, a frame goes missing right after an early
// part, a key frame comes one frame late, and one due does not come at all. Each segment still
// ends with a part marked Last: the part before the scene cut is sent again so marked, and the
// part before each key frame due waits for it. Segments end where the packager without early
// parts ends them; one starts at a non-key frame only at the segment limit, where that
// packager cuts too. The timeline stays continuous, and no part breaks P2. (Synthetic frames, so that each lands
// where the test needs it: their slices are filler, which no decoder reads.)
func TestEarlyPartsUnforeseen(t *testing.T) {
	const fps = 30
	// The scene cut is 18 frames into a 1 s segment, at a part boundary; as x264 does, the
	// encoder counts its next key frames from there: 168, 198 and on. Frame 216 is the first of
	// a part. Key frame 258 comes as frame 259 (as a time-based -force_key_frames does when the
	// frame at the instant is missing from its input). Key frame 318 is due, and does not come.
	s := synth{num: fps, den: 1, gop: fps, frames: 12 * fps, audio: true,
		keys: map[int]bool{}, nonKeys: map[int]bool{}, drop: map[int]bool{216: true}}
	for i := 138; i < s.frames; i += fps {
		s.keys[i] = true
		s.nonKeys[i+12] = true
	}
	s.keys[258], s.nonKeys[258], s.keys[259] = false, true, true
	s.keys[318], s.nonKeys[318] = false, true
	in := s.input()
	r := runEarly(t, in, Config{SegmentTarget: time.Second})
	rec := r.rec
	rec.implicitEnds = false // every segment's end must be marked Last
	checkParts(t, rec, r.p.PartTarget(), time.Second)

	early := r.early()
	sum, cut := 0, -1
	for i := range rec.parts {
		if sum += r.held[i]; sum == 138 && early[i] { // the part before the scene cut
			cut = i
		}
	}
	// Sent again: that part, and the stream's last if it went out early.
	if last := len(rec.parts) - 1; cut < 0 || !slices.Equal(slices.DeleteFunc(slices.Clone(rec.repeated), func(i int) bool { return i == last }), []int{cut}) {
		t.Errorf("parts sent again %v, want the one before the scene cut (part %d, early) and at most the last", rec.repeated, cut)
	}
	plain, prec := packAll(t, Config{SegmentTarget: time.Second}, in, true)
	// The segments that start at a non-key frame.
	forcedStarts := func(parts []media.Part) (msns []uint64) {
		for _, p := range parts {
			if p.Index == 0 && !p.Independent {
				msns = append(msns, p.MSN)
			}
		}
		return msns
	}
	forced, plainForced := forcedStarts(rec.parts), forcedStarts(prec.parts)
	if len(forced) != 1 || !slices.Equal(forced, plainForced) || r.p.Stats().ForcedCuts != 1 {
		t.Errorf("segments starting at a non-key frame: %v (ForcedCuts %d), without early parts %v; want the same one",
			forced, r.p.Stats().ForcedCuts, plainForced)
	}
	if st, pst := r.p.Stats(), plain.Stats(); st.Segments != pst.Segments || st.LongParts+st.ShortParts != 0 || st.DroppedVideo != 0 {
		t.Errorf("stats %+v, without early parts %+v", st, pst)
	}
	if total := rec.duration(); (total - 12*time.Second).Abs() > time.Millisecond {
		t.Errorf("parts last %v in all, want 12s: the missing frame's time must stay on the timeline", total)
	}
}

// TestEarlyPartsKeyFrameAsked: a WHIP ingest asks its publisher for key frames (PLIs), and the
// answer comes whenever the publisher's encoder next captures a frame, off the cadence of the
// key frames before it. Told of the request before the frame after which it is sent, the
// packager keeps back every part the answer could end, so no part is sent again marked Last and
// each preload hint named the part that came. A publisher that ignores the request gets its
// early parts back a second later. 30 fps, parts of 6 frames, key frames every 2 s.
func TestEarlyPartsKeyFrameAsked(t *testing.T) {
	// The part of frames 162–167 is past half of the segment that frame 120 starts, and the
	// cadence says no key frame is due after it (the next is due at 180); the answer to a
	// request sent after frame 167 (told before it) is the next capture, frame 168, from which
	// the encoder counts its GOP again.
	answered := synth{num: 30, den: 1, gop: 60, frames: 8 * 30, audio: true,
		keys: map[int]bool{168: true, 228: true}, nonKeys: map[int]bool{180: true}}
	// The part of frames 150–155 is past half of that segment; a request told before frame 125
	// goes unanswered, so from frame 156 parts go out early as before.
	ignored := synth{num: 30, den: 1, gop: 60, frames: 8 * 30, audio: true}

	endsAt := func(r *earlyRun, frame int) int { // the part whose last frame is frame
		sum := 0
		for i, n := range r.held {
			if sum += n; sum == frame+1 {
				return i
			}
		}
		t.Fatalf("no part ends at frame %d: parts of %v frames", frame, r.held)
		return -1
	}
	for _, c := range []struct {
		name  string
		in    synth
		ask   int
		early map[int]bool // parts, by their last frame, that must (not) go out early when asked
	}{
		{"answered", answered, 167, map[int]bool{167: false}},
		{"ignored", ignored, 125, map[int]bool{155: false, 161: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := c.in.input()
			cfg := Config{SegmentTarget: 2 * time.Second}
			blind, told := runEarly(t, in, cfg), runEarly(t, in, cfg, c.ask)
			told.rec.implicitEnds = false
			checkParts(t, told.rec, told.p.PartTarget(), 2*time.Second)
			// Close sends the stream's last part again when it went out early.
			if again := slices.DeleteFunc(slices.Clone(told.rec.repeated), func(i int) bool { return i == len(told.rec.parts)-1 }); len(again) > 0 {
				t.Errorf("told of the request, parts sent again %v, want none before the last", again)
			}
			for frame, want := range c.early {
				if e := told.early()[endsAt(told, frame)]; e != want {
					t.Errorf("told of the request before frame %d, the part ending at frame %d early %v, want %v", c.ask, frame, e, want)
				}
				if !blind.early()[endsAt(blind, frame)] {
					t.Errorf("not told, the part ending at frame %d waited: the test no longer shows the request's effect", frame)
				}
			}
			if c.name == "answered" && (len(blind.rec.repeated) == 0 || blind.rec.repeated[0] != endsAt(blind, 167)) {
				t.Errorf("not told, parts sent again %v, want the one ending at frame 167 first: the answer did not come off the cadence as the test means it to", blind.rec.repeated)
			}
			if len(told.rec.parts) != len(blind.rec.parts) {
				t.Errorf("%d parts told, %d not", len(told.rec.parts), len(blind.rec.parts))
			}
		})
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
	if n == 0 || r.fed[n-1] != 3*30+12 || !slices.Contains(rec.repeated, n-1) {
		t.Fatalf("%d parts, the last out after frame %d, parts sent again %v; want it out with frame %d and sent again", n, r.fed[n-1], rec.repeated, 3*30+12)
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

// FuzzEarlyParts: video whose timing early parts must foresee, from bytes that each make one
// frame: on the 30 fps grid, a millisecond early or late, or one or two frames after a gap; a
// key frame every 30 frames, or one that does not come, or a scene cut anywhere. Whatever the
// timing, early parts keep every segment's end marked Last, the fMP4 timeline continuous and
// as long, every frame, and the segments the packager without them makes, and break P2 or
// TARGETDURATION no more often than it does.
func FuzzEarlyParts(f *testing.F) {
	steady := make([]byte, 200)
	f.Add(steady)
	f.Add(append(slices.Repeat([]byte{0}, 80), 6, 0, 0, 0, 0, 0, 24, 0, 4, 5, 0, 0, 0, 7, 0))
	f.Add(append(slices.Repeat([]byte{0}, 138), 24, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 224))
	f.Fuzz(func(t *testing.T, plan []byte) {
		if len(plan) >= 2 && len(plan) <= 300 { // up to 10 s
			checkEarly(t, plan, false)
		}
	})
}

// FuzzEarlyPartsBFrames is FuzzEarlyParts with B-frames, as x264 makes them by default (and OBS
// with it): an I or P frame decoded two frames before it is shown, then the two B-frames shown
// before it, each GOP closed. Frames moved off their own times after an early part must keep
// their presentation order.
func FuzzEarlyPartsBFrames(f *testing.F) {
	f.Add(make([]byte, 200))
	f.Add(append(slices.Repeat([]byte{0}, 80), 6, 0, 0, 0, 0, 0, 24, 0, 4, 5, 0, 0, 0, 7, 0))
	f.Fuzz(func(t *testing.T, plan []byte) {
		if len(plan) >= 2 && len(plan) <= 300 { // up to 10 s
			checkEarly(t, plan, true)
		}
	})
}

// checkEarly packages the input plan describes with and without early parts, and compares.
func checkEarly(t *testing.T, plan []byte, bframes bool) {
	t.Helper()
	in := planned(plan, bframes)
	cfg := Config{SegmentTarget: time.Second}
	r := runEarly(t, in, cfg)
	rec := r.rec
	rec.implicitEnds = false // every segment's end must be marked Last
	plain, prec := packAll(t, cfg, in, true)

	// A part too long, or a segment, is never the input's doing. A part too short is,
	// after a gap: either packager ends a part a frame short rather than let the frame
	// before the gap carry it past PART-TARGET, and which part that falls on differs.
	gaps := slices.ContainsFunc(plan, func(b byte) bool { return b&7 >= 6 })
	faults, plainFaults := partTimingFaults(t, rec, r.p.PartTarget(), time.Second), partTimingFaults(t, prec, plain.PartTarget(), time.Second)
	if gaps {
		short := func(f string) bool { return strings.Contains(f, "< 85%") }
		faults, plainFaults = slices.DeleteFunc(faults, short), slices.DeleteFunc(plainFaults, short)
	}
	if len(faults) > len(plainFaults) {
		t.Errorf("early parts: %q; without them: %q", faults, plainFaults)
	}
	checkStructure(t, rec)
	checkStructure(t, prec)
	// The plain packager's timeline spans the input's, its last frame lasting the nominal
	// interval; the early one's is as long.
	var first, last time.Duration = -1, 0
	for _, u := range in.units {
		if u.video {
			if first < 0 {
				first = u.dts
			}
			last = u.dts
		}
	}
	if pd, span := prec.duration(), last-first+plain.frameDur; (pd - span).Abs() > time.Millisecond {
		t.Errorf("parts without early parts last %v in all, the input %v", pd, span)
	}
	if d, pd := rec.duration(), prec.duration(); (d - pd).Abs() > time.Millisecond {
		t.Errorf("parts last %v in all, %v without early parts", d, pd)
	}
	for _, r := range []*recorder{rec, prec} {
		if frames, want := len(videoOut(t, r)), countVideo(in.units); frames != want {
			t.Errorf("%d video frames in the parts (early parts %v), %d fed", frames, r == rec, want)
		}
	}
	// Without gaps, segments start at the same frames, but one cut at a non-key frame (at
	// the segment limit) may come a frame later or sooner: after an early part the next
	// frame starts where that part ended, up to a millisecond off its own time, and the
	// limit is measured from there. After a gap that frame, not the one before, lasts
	// the gap, so a segment can start that much sooner, and a key frame can end it.
	type start struct {
		frame int
		key   bool
	}
	starts := func(rec *recorder) (at []start) {
		n := 0
		for _, p := range rec.parts {
			if p.Index == 0 {
				at = append(at, start{n, p.Independent})
			}
			n += videoFrames(t, p)
		}
		if k := len(at) - 1; k > 0 && !at[k].key && at[k].frame >= n-2 {
			at = at[:k] // a cut near the last frame, which the other may make a frame later: after it
		}
		return at
	}
	got, want := starts(rec), starts(prec)
	if !gaps && !slices.EqualFunc(got, want, func(a, b start) bool {
		return a == b || !a.key && !b.key && a.frame-b.frame <= 1 && b.frame-a.frame <= 1
	}) {
		t.Errorf("segments start at frames (key frame or not) %v, without early parts at %v", got, want)
	}
	for _, rec := range []*recorder{rec, prec} {
		checkPresentationOrder(t, rec, in)
		if !bframes {
			checkNoHoles(t, rec)
		}
	}
}

// outFrame is a video sample of the output, on its timeline.
type outFrame struct{ dts, pts, dur int64 }

// videoOut lists the video samples of rec in decode order.
func videoOut(t *testing.T, rec *recorder) (out []outFrame) {
	t.Helper()
	for _, p := range rec.parts {
		var ps fmp4.Parts
		if err := ps.Unmarshal(p.Data); err != nil {
			t.Fatalf("part %d.%d: %v", p.MSN, p.Index, err)
		}
		for _, tr := range ps[0].Tracks {
			if tr.ID != 1 {
				continue
			}
			dts := int64(tr.BaseTime)
			for _, smp := range tr.Samples {
				out = append(out, outFrame{dts, dts + int64(smp.PTSOffset), int64(smp.Duration)})
				dts += int64(smp.Duration)
			}
		}
	}
	return out
}

// checkNoHoles asserts that each video frame of rec, which has no B-frames, is shown until the
// next one is: a hole in the shown video stalls an MSE player.
func checkNoHoles(t *testing.T, rec *recorder) {
	t.Helper()
	out := videoOut(t, rec)
	for k := 1; k < len(out); k++ {
		if end := out[k-1].pts + out[k-1].dur; out[k].pts > end {
			t.Errorf("video frame %d shown at %d, the one before it until %d", k, out[k].pts, end)
			return
		}
	}
}

// checkPresentationOrder asserts that the video frames of rec, in the order their input
// timestamps show them, have increasing presentation times: but for a frame that could not be
// shown in time, as it is decoded only after the frame to be shown next (the frame rate went up
// right after an early part, which foresaw the next frame later than it came).
func checkPresentationOrder(t *testing.T, rec *recorder, in input) {
	t.Helper()
	out := videoOut(t, rec)
	var shown []unit // input video frames in decode order
	for _, u := range in.units {
		if u.video {
			shown = append(shown, u)
		}
	}
	if len(shown) != len(out) {
		return // counted by the caller
	}
	order := make([]int, len(shown))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(shown[a].pts - shown[b].pts) })
	for k := 1; k < len(order); k++ {
		if a, b := order[k-1], order[k]; out[b].pts <= out[a].pts && !(out[a].pts == out[a].dts && out[a].dts >= out[b].pts) {
			t.Errorf("frame %d (decoded %d) is shown at %d, not after frame %d (decoded %d) at %d, as its input says",
				k, b, out[b].pts, k-1, a, out[a].pts)
			return
		}
	}
}

// planned makes the input FuzzEarlyParts describes: a frame per byte of plan, with B-frames
// if bframes.
func planned(plan []byte, bframes bool) input {
	const fps = 30
	s := synth{num: fps, den: 1, gop: fps, frames: len(plan), audio: true,
		keys: map[int]bool{}, nonKeys: map[int]bool{}}
	slot := 0
	for i, b := range plan {
		ms := int(math.Round(float64(slot) * 1000 / fps))
		switch b & 7 {
		case 4:
			ms++
		case 5:
			ms--
		}
		s.times = append(s.times, time.Duration(max(ms, 0))*time.Millisecond)
		switch {
		case b>>3&3 == 3:
			s.keys[i] = true
		case b>>5 == 7 && i%fps == 0 && i > 0:
			s.nonKeys[i] = true
		}
		slot++
		switch b & 7 {
		case 6:
			slot++
		case 7:
			slot += 2
		}
	}
	in := s.input()
	if bframes {
		withBFrames(in, s)
	}
	return in
}

// withBFrames gives the video frames of in, made by s, the timestamps of an IPBB structure as
// x264 makes them: in each closed GOP, frame j is shown as the j+2nd if it is the first of a
// group of three (a P-frame), else as the j-1st (a B-frame), the GOP's last frames all
// P-frames; and a frame's decode time (the RTMP timestamp, s's time for it) is the capture time
// of the frame shown two before it, so that every frame is shown after it is decoded, gaps or
// not.
func withBFrames(in input, s synth) {
	var video []int // indexes into in.units
	for i, u := range in.units {
		if u.video {
			video = append(video, i)
		}
	}
	fd := time.Second / time.Duration(s.num)
	capture := func(k int) time.Duration { // the capture time of the kth frame shown
		if k < len(video) {
			return in.units[video[k]].dts
		}
		return in.units[video[len(video)-1]].dts + time.Duration(k-len(video)+1)*fd
	}
	for k := 0; k < len(video); {
		end := k + 1
		for end < len(video) && !h264.IsRandomAccess(in.units[video[end]].au) {
			end++
		}
		for j := 0; k+j < end; j++ {
			shown := j
			if g, r := (j-1)/3, (j-1)%3; j > 0 && k+3*g+3 < end { // a whole group fits
				if r == 0 {
					shown = j + 2
				} else {
					shown = j - 1
				}
			}
			in.units[video[k+j]].pts = capture(k + shown + 2)
		}
		k = end
	}
}
