package packager

import (
	"glasscast/media"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

func TestTicks(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		ts   int64
		want int64
	}{
		{time.Second, 90000, 90000},
		{33 * time.Millisecond, 90000, 2970},
		{time.Second / 3, 90000, 30000},
		{-time.Millisecond, 90000, -90},
		{1000 * time.Hour, 90000, 324_000_000_000},
		{time.Millisecond, 44100, 44}, // 44.1 rounds down
		{3 * time.Millisecond / 2, 1000, 2},
	} {
		if got := toTicks(c.d, c.ts); got != c.want {
			t.Errorf("toTicks(%v, %d) = %d, want %d", c.d, c.ts, got, c.want)
		}
	}
	if got := toDuration(3003, 90000); got != 33366667*time.Nanosecond {
		t.Errorf("toDuration rounds %v", got)
	}
	for _, ticks := range []int64{0, 1, 3003, 90000 * 3600 * 30} {
		if back := toTicks(toDuration(ticks, 90000), 90000); back != ticks {
			t.Errorf("round trip of %d ticks = %d", ticks, back)
		}
	}
}

func TestPartTargetArithmetic(t *testing.T) {
	for _, c := range []struct {
		fps    float64
		want   time.Duration
		frames int
	}{
		{24000.0 / 1001, 213 * time.Millisecond, 5},
		{24, 213 * time.Millisecond, 5},
		{25, 204 * time.Millisecond, 5},
		{30000.0 / 1001, 205 * time.Millisecond, 6},
		{30, 204 * time.Millisecond, 6},
		{50, 204 * time.Millisecond, 10},
		{60000.0 / 1001, 205 * time.Millisecond, 12},
		{60, 204 * time.Millisecond, 12},
		{5, 204 * time.Millisecond, 1},
		{2, 510 * time.Millisecond, 1}, // a frame is longer than the request: one per part
	} {
		fd := time.Duration(float64(time.Second) / c.fps)
		got, n := advertisedPartTarget(200*time.Millisecond, fd)
		if got != c.want || n != c.frames {
			t.Errorf("%.3f fps: target %v with %d frames, want %v with %d", c.fps, got, n, c.want, c.frames)
		}
		if m := framesPerPart(got, fd); m != n {
			t.Errorf("%.3f fps: framesPerPart(%v) = %d, want %d", c.fps, got, m, n)
		}
		if float64(n)*float64(fd) < 0.85*float64(got) {
			t.Errorf("%.3f fps: full parts below 85%% of %v", c.fps, got)
		}
	}
	// A successor at 60 fps under a 30 fps predecessor's 204 ms target fits 12 frames.
	if n := framesPerPart(204*time.Millisecond, time.Second/60); n != 12 {
		t.Errorf("framesPerPart = %d", n)
	}
}

func TestMeasureFrameDuration(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	for _, c := range []struct {
		name string
		dts  []time.Duration
		hint float64
		want time.Duration
	}{
		{"30 fps", ms(0, 33, 67, 100, 133, 167, 200, 233, 267, 300), 0, time.Second / 30},
		{"29.97 with hint", ms(0, 33, 67, 100, 133, 167, 200, 234, 267, 300), 30000.0 / 1001, 33366667},
		{"dropped frame", ms(0, 40, 80, 160, 200, 240, 280), 0, 40 * time.Millisecond},
		{"25 fps, wrong hint ignored", ms(0, 40, 80, 120, 160), 50, 40 * time.Millisecond},
		{"odd rate kept", ms(0, 37, 74, 111, 148), 0, 37 * time.Millisecond},
		{"one frame", ms(0), 0, 0},
		// Chromium's VP8 over WHIP, through the transcoder: two frames, then a pause.
		{"pause after the first frames", ms(220, 270, 769), 30, 50 * time.Millisecond},
		{"pause after three frames", ms(236, 287, 338, 838), 30, 51 * time.Millisecond},
		// Chromium's H.264 over WHIP on loaded cores: fits, then its camera's 20 fps. The
		// median alone read 46.25 ms, a PART-TARGET of 189 ms that four 50 ms frames overfill.
		{"steady after fits", ms(150, 185, 285, 535, 585, 635, 685), 0, 50 * time.Millisecond},
	} {
		got := snapFrameDuration(measureFrameDuration(c.dts), c.hint)
		if got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSegmentLimit(t *testing.T) {
	for _, c := range []struct{ target, want time.Duration }{
		{2 * time.Second, 2200 * time.Millisecond},
		{time.Second, 1100 * time.Millisecond},
		{6 * time.Second, 6250 * time.Millisecond},
		{1500 * time.Millisecond, 1650 * time.Millisecond},
	} {
		if got := segmentLimit(c.target); got != c.want {
			t.Errorf("segmentLimit(%v) = %v, want %v", c.target, got, c.want)
		}
	}
}

func TestHEVCCodecs(t *testing.T) {
	var s h265.SPS
	if err := s.Unmarshal(mustHex("42010101600000030090000003000003003fa00502016965959a4932bc05a020000003002000000303c1")); err != nil {
		t.Fatal(err)
	}
	if got := hevcCodecs(&s.ProfileTierLevel); got != "hvc1.1.6.L63.90" {
		t.Errorf("codecs = %s", got)
	}
	p := h265.SPS_ProfileTierLevel{GeneralProfileSpace: 1, GeneralTierFlag: 1, GeneralProfileIdc: 2, GeneralLevelIdc: 120,
		GeneralProgressiveSourceFlag: true, GeneralFrameOnlyConstraintFlag: true}
	p.GeneralProfileCompatibilityFlag[2] = true
	if got := hevcCodecs(&p); got != "hvc1.A2.4.H120.90" {
		t.Errorf("codecs = %s", got)
	}
}

func TestWriteSeeker(t *testing.T) {
	w := &writeSeeker{b: []byte("ab"), pos: 2}
	w.Write([]byte("cdef"))
	if _, err := w.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("XYZW"))
	if _, err := w.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("!"))
	if string(w.b) != "abcXYZW!" {
		t.Errorf("got %q", w.b)
	}
	if _, err := w.Seek(-100, io.SeekCurrent); err == nil {
		t.Error("seek before the start accepted")
	}
}

func TestNewErrors(t *testing.T) {
	out := &recorder{}
	for name, f := range map[string]func() (*Packager, error){
		"no tracks":   func() (*Packager, error) { return New(Config{}, nil, nil, out) },
		"no output":   func() (*Packager, error) { return New(Config{}, &codecs.H264{}, nil, nil) },
		"video codec": func() (*Packager, error) { return New(Config{}, &codecs.VP9{}, nil, out) },
		"audio codec": func() (*Packager, error) { return New(Config{}, nil, &codecs.MPEG1Audio{}, out) },
		"no rate":     func() (*Packager, error) { return New(Config{}, nil, &codecs.MPEG4Audio{}, out) },
		"targets": func() (*Packager, error) {
			return New(Config{PartTarget: time.Second, SegmentTarget: time.Second}, &codecs.H264{}, nil, out)
		},
	} {
		if _, err := New(Config{}, &codecs.H264{}, nil, out); err != nil {
			t.Fatal(err)
		}
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p, _ := New(Config{}, &codecs.H264{}, nil, out)
	if err := p.WriteH265(testCtx, 0, 0, nil); err == nil {
		t.Error("H.265 into an H.264 packager")
	}
	if err := p.WriteMPEG4Audio(testCtx, 0, []byte{1}); err == nil {
		t.Error("audio into a video-only packager")
	}
	p.Close(testCtx)
	if err := p.WriteH264(testCtx, 0, 0, [][]byte{filler(0x65, 10)}); err == nil {
		t.Error("write after Close")
	}
}

// TestSyntheticRates checks P2 and the segment rules at rates and GOPs ffmpeg tests do not
// cover, with RTMP's millisecond rounding.
func TestSyntheticRates(t *testing.T) {
	for _, c := range []struct {
		name     string
		s        synth
		segments time.Duration
	}{
		{"23.976 g48", synth{num: 24000, den: 1001, gop: 48}, 2002 * time.Millisecond},
		{"29.97 g60", synth{num: 30000, den: 1001, gop: 60}, 2002 * time.Millisecond},
		{"59.94 g120", synth{num: 60000, den: 1001, gop: 120}, 2002 * time.Millisecond},
		{"50 g50", synth{num: 50, den: 1, gop: 50}, time.Second},
		{"30 g45", synth{num: 30, den: 1, gop: 45}, 1500 * time.Millisecond},
		{"30 g15", synth{num: 30, den: 1, gop: 15}, time.Second},
		{"15 g30", synth{num: 15, den: 1, gop: 30}, 2 * time.Second},
		{"30 g60 from 1h", synth{num: 30, den: 1, gop: 60, start: time.Hour}, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.s.frames = 20 * c.s.num / c.s.den
			c.s.audio = true
			p, rec := packAll(t, Config{}, c.s.input(), true)
			checkParts(t, rec, p.PartTarget(), 2*time.Second)
			segs := rec.segments(t)
			for i, seg := range segs[:len(segs)-1] {
				var d time.Duration
				for _, p := range seg {
					d += p.Duration
				}
				if (d-c.segments).Abs() > time.Millisecond || !seg[0].Independent {
					t.Errorf("segment %d: %v (independent %v), want %v", i, d, seg[0].Independent, c.segments)
				}
			}
			if s := p.Stats(); s.ForcedCuts+s.LongParts+s.ShortParts+s.DroppedVideo+s.DroppedAudio+s.TimestampJumps != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestDroppedFrames feeds a stream with holes: parts close early rather than exceed the target.
func TestDroppedFrames(t *testing.T) {
	s := synth{num: 30, den: 1, gop: 60, frames: 300, drop: map[int]bool{20: true, 21: true, 100: true, 101: true, 102: true, 205: true}}
	in := s.input()
	rec := &recorder{}
	p, _ := New(Config{}, in.video, nil, rec)
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	for _, part := range rec.parts {
		if part.Duration > p.PartTarget() {
			t.Errorf("part %d.%d: %v", part.MSN, part.Index, part.Duration)
		}
	}
	// Holes that keep a part within PART-TARGET cost nothing. After the three missing frames
	// 100-102, frame 99 would stretch its part to 233 ms: it moves to the next part and leaves
	// a short one (96-98) behind.
	if st := p.Stats(); st.LongParts != 0 || st.ShortParts != 1 || st.TimestampJumps != 0 {
		t.Errorf("stats %+v", st)
	}
	if total := rec.duration(); (total - 10*time.Second).Abs() > time.Millisecond {
		t.Errorf("total %v: holes must stay on the timeline", total)
	}
}

// TestTimestampJump: the publisher's clock jumps forward and back; the timeline continues.
func TestTimestampJump(t *testing.T) {
	a := synth{num: 30, den: 1, gop: 60, frames: 120, audio: true}.input()
	b := synth{num: 30, den: 1, gop: 60, frames: 120, audio: true, start: time.Hour}.input()
	c := synth{num: 30, den: 1, gop: 60, frames: 120, audio: true, start: 10 * time.Second}.input()
	rec := &recorder{}
	p, _ := New(Config{}, a.video, a.audio, rec)
	for _, in := range []input{a, b, c} {
		feed(t, p, in, in.units)
	}
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	checkParts(t, rec, p.PartTarget(), 2*time.Second)
	total := rec.duration()
	if st := p.Stats(); st.TimestampJumps != 2 || (total-12*time.Second).Abs() > 2*time.Millisecond {
		t.Errorf("stats %+v, total %v", st, total)
	}
	// A/V stay together: the audio track ends within a frame of the video.
	st := p.State()
	if (st.Time - 12*time.Second).Abs() > 25*time.Millisecond {
		t.Errorf("state time %v", st.Time)
	}
}

func TestAudioOnly(t *testing.T) {
	in := readTS(t, encode(t, 5, nil, aac()))
	rec := &recorder{}
	p, err := New(Config{Rendition: "audio"}, nil, in.audio, rec)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	// 48 kHz AAC: 9 frames of 21.333 ms per part, 10 parts per segment.
	if got := p.PartTarget(); got != 196*time.Millisecond {
		t.Errorf("PartTarget %v", got)
	}
	checkParts(t, rec, p.PartTarget(), 2*time.Second)
	r := rec.inits[0].r
	if r.Codecs != "mp4a.40.2" || r.Width != 0 || r.FrameRate != 0 {
		t.Errorf("rendition %+v", r)
	}
	segs := rec.segments(t)
	for i, seg := range segs[:len(segs)-1] {
		if len(seg) != 10 {
			t.Errorf("segment %d: %d parts", i, len(seg))
		}
	}
	_, frames, _ := ffprobe(t, rec.file(t))
	if want := len(in.units); frames["audio"] != want {
		t.Errorf("decoded %d audio frames, fed %d", frames["audio"], want)
	}
}

func TestOpusAudioOnly(t *testing.T) {
	in := readTS(t, encode(t, 3, nil, []string{"48000", "-c:a", "libopus", "-b:a", "64k"}))
	rec := &recorder{}
	p, err := New(Config{}, nil, in.audio, rec)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if got := p.PartTarget(); got != 204*time.Millisecond || rec.inits[0].r.Codecs != "opus" {
		t.Errorf("PartTarget %v, codecs %s", got, rec.inits[0].r.Codecs)
	}
	checkParts(t, rec, p.PartTarget(), 2*time.Second)
	if _, frames, _ := ffprobe(t, rec.file(t)); frames["audio"] != len(in.units) {
		t.Errorf("decoded %d frames of %d", frames["audio"], len(in.units))
	}
}

func TestVideoOnlyH265(t *testing.T) {
	in := readTS(t, encode(t, 4, []string{"testsrc2=size=640x360:rate=30", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "log-level=error:keyint=60:min-keyint=60:scenecut=0:bframes=2"}, nil))
	rec := &recorder{}
	p, err := New(Config{}, in.video, nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	checkParts(t, rec, p.PartTarget(), 2*time.Second)
	if r := rec.inits[0].r; r.Codecs != "hvc1.1.6.L63.90" || r.Width != 640 || r.Height != 360 {
		t.Errorf("rendition %+v", r)
	}
	if got := len(rec.segments(t)); got != 2 {
		t.Errorf("%d segments", got)
	}
	res, frames, _ := ffprobe(t, rec.file(t))
	if frames["video"] != countVideo(in.units) || res.Streams[0].CodecName != "hevc" {
		t.Errorf("decoded %d %s frames of %d", frames["video"], res.Streams[0].CodecName, countVideo(in.units))
	}
}

// FuzzWriteH264 feeds publisher-controlled bytes: nothing may panic, whatever the NALUs hold.
func FuzzWriteH264(f *testing.F) {
	f.Add([]byte{0x67, 0x42}, []byte{0x65, 1, 2}, int64(0), int64(33), true)
	f.Add(sps720, []byte{0x41, 0}, int64(33), int64(0), false)
	f.Add([]byte{0x40, 1, 0x42, 1}, []byte{0x26, 1}, int64(-5), int64(1<<40), true)
	f.Fuzz(func(t *testing.T, param, slice []byte, step, jitter int64, h265 bool) {
		var video codecs.Codec = &codecs.H264{}
		if h265 {
			video = &codecs.H265{}
		}
		p, err := New(Config{}, video, &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: 2, SampleRate: 44100, ChannelConfig: 1}}, &recorder{})
		if err != nil {
			t.Fatal(err)
		}
		write := p.WriteH264
		if h265 {
			write = p.WriteH265
		}
		ts := time.Duration(0)
		for i := range 40 {
			au := [][]byte{slice}
			if i%15 == 0 {
				au = [][]byte{param, pps, slice, {}}
			}
			// Errors are fine (a garbage SPS cannot make an init); panics are not.
			_ = write(testCtx, ts+time.Duration(jitter%1000)*time.Millisecond, ts, au)
			_ = p.WriteMPEG4Audio(testCtx, ts, slice)
			ts += time.Duration(step%100) * time.Millisecond
		}
		_ = p.Close(testCtx)
	})
}

// TestVideoPause: video stops for 3 s while audio goes on. That is no clock jump: the gap
// stays on the timeline and the audio is kept.
func TestVideoPause(t *testing.T) {
	s := synth{num: 30, den: 1, gop: 60, frames: 300, audio: true, drop: map[int]bool{}}
	for i := 100; i < 190; i++ {
		s.drop[i] = true
	}
	in := s.input()
	rec := &recorder{}
	p, _ := New(Config{}, in.video, in.audio, rec)
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.TimestampJumps != 0 || st.DroppedAudio != 0 || st.LongParts != 1 {
		t.Errorf("stats %+v", st)
	}
	if end := p.State().Time; (end - 10*time.Second).Abs() > 25*time.Millisecond {
		t.Errorf("timeline ends at %v, want 10s", end)
	}
}

// TestAudioPause: audio stops for 3 s while video goes on; when it comes back it is kept.
func TestAudioPause(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 60, frames: 300, audio: true}.input()
	var units []unit
	for _, u := range in.units {
		if u.video || u.dts < 3*time.Second || u.dts >= 6*time.Second {
			units = append(units, u)
		}
	}
	rec := &recorder{}
	p, _ := New(Config{}, in.video, in.audio, rec)
	feed(t, p, in, units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	checkParts(t, rec, p.PartTarget(), 2*time.Second)
	var audio int
	for _, part := range rec.parts {
		var ps fmp4.Parts
		if err := ps.Unmarshal(part.Data); err != nil {
			t.Fatal(err)
		}
		for _, tr := range ps[0].Tracks {
			if tr.ID == 2 {
				audio += len(tr.Samples)
			}
		}
	}
	if want := len(units) - 300; audio != want || p.Stats().DroppedAudio != 0 {
		t.Errorf("%d audio frames written of %d, stats %+v", audio, want, p.Stats())
	}
}

// TestVariableFrameRate feeds the timestamps of a browser's camera under load: a rate that
// drifts after the probe fixed PART-TARGET, capture jitter, dropped frames and a burst after
// a hiccup. Parts never exceed PART-TARGET; one under 85 % of it is allowed only where the
// frame after it would have carried it past PART-TARGET (the frame grid leaves no legal cut),
// which the llhlscheck P2 row also allows for such sources.
func TestVariableFrameRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	var times []time.Duration
	at := time.Duration(0)
	add := func(fps float64, d time.Duration, jitter time.Duration) {
		for end := at + d; at < end; at += time.Duration(float64(time.Second) / fps) {
			j := time.Duration(0)
			if jitter > 0 {
				j = time.Duration(rng.Int64N(int64(2*jitter))) - jitter
			}
			times = append(times, (at + j).Round(time.Millisecond/90))
		}
	}
	add(30, 2*time.Second, 0) // the probe sees 30 fps: six frames a part, PART-TARGET 204 ms
	add(29, 2*time.Second, time.Millisecond)
	add(28, 2*time.Second, 2*time.Millisecond)
	add(30, time.Second, 0)
	at += 100 * time.Millisecond // a hiccup, then the frames it held back in a burst
	for range 4 {
		times = append(times, at)
		at += 12 * time.Millisecond
	}
	add(30, time.Second, 0)
	add(20, 2*time.Second, 5*time.Millisecond) // as Chromium's fake camera on two loaded cores
	add(19, 2*time.Second, 5*time.Millisecond)
	add(36, 2*time.Second, time.Millisecond)
	drop := map[int]bool{}
	for i := 300; i < len(times); i += 37 {
		drop[i] = true
	}
	s := synth{num: 30, den: 1, gop: 60, frames: len(times), times: times, drop: drop, audio: true}
	p, rec := packAll(t, Config{}, s.input(), true)
	target := p.PartTarget()
	if target != 204*time.Millisecond {
		t.Fatalf("PART-TARGET %v, want 204 ms from the 30 fps probe", target)
	}
	forced := 0
	for i, part := range rec.parts {
		if part.Duration > target {
			t.Errorf("part %d.%d: %v > PART-TARGET", part.MSN, part.Index, part.Duration)
		}
		if part.Last || part.Independent || part.Duration*100 >= target*85 || i+1 == len(rec.parts) {
			continue
		}
		next := firstVideoSample(t, rec.parts[i+1])
		if part.Duration+next <= target {
			t.Errorf("part %d.%d: %v, under 85 %% of PART-TARGET, though the next frame (%v) fits", part.MSN, part.Index, part.Duration, next)
		}
		forced++
	}
	st := p.Stats()
	t.Logf("%d parts, %d short where the frame grid left no legal cut; stats %+v", len(rec.parts), forced, st)
	if st.LongParts != 0 || st.ShortParts != forced {
		t.Errorf("stats %+v, want no long parts and %d short ones", st, forced)
	}
}

// firstVideoSample returns the duration of a part's first video frame.
func firstVideoSample(t *testing.T, p media.Part) time.Duration {
	t.Helper()
	var ps fmp4.Parts
	if err := ps.Unmarshal(p.Data); err != nil {
		t.Fatal(err)
	}
	for _, tr := range ps[0].Tracks {
		if tr.ID == 1 && len(tr.Samples) > 0 {
			return toDuration(int64(tr.Samples[0].Duration), videoTimescale)
		}
	}
	t.Fatalf("part %d.%d has no video", p.MSN, p.Index)
	return 0
}

// TestProbeWaitsForSteadyRate: Chromium's camera over WHIP sends two frames, pauses, and
// only then settles at 20 fps. Measured from its first half second the rate reads 8.7 fps
// and PART-TARGET 235 ms; the probe waits for steady intervals and fixes 204 ms, four frames.
// The frame before the pause lasts 351 ms: no cut can keep its part within PART-TARGET.
func TestProbeWaitsForSteadyRate(t *testing.T) {
	times := []time.Duration{147 * time.Millisecond, 262 * time.Millisecond, 613 * time.Millisecond}
	for at := 663 * time.Millisecond; at < 5*time.Second; at += 50 * time.Millisecond {
		times = append(times, at)
	}
	p, _ := packAll(t, Config{}, synth{num: 20, den: 1, gop: 40, frames: len(times), times: times}.input(), false)
	if got := p.PartTarget(); got != 204*time.Millisecond {
		t.Fatalf("PART-TARGET %v, want 204 ms", got)
	}
	if st := p.Stats(); st.ShortParts != 0 || st.LongParts != 1 {
		t.Errorf("stats %+v, want only the paused frame's part long", st)
	}
}
