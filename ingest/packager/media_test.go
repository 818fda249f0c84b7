package packager

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"glasscast/media"
	"glasscast/metadata"
)

// TestH264AAC packages a 720p30 H.264 + AAC stream and checks that what comes out decodes
// frame for frame and follows the LL-HLS rules.
func TestH264AAC(t *testing.T) {
	for _, c := range []struct {
		name   string
		extra  []string
		wantBF bool
	}{
		{"no B-frames", []string{"-bf", "0"}, false},
		{"B-frames", []string{"-bf", "2"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := readTS(t, encode(t, 6, x264("1280x720", "30", 60, c.extra...), aac()))
			rec := &recorder{}
			p, err := New(Config{Rendition: "source"}, in.video, in.audio, rec)
			if err != nil {
				t.Fatal(err)
			}
			feed(t, p, in, in.units)
			if err := p.Close(testCtx); err != nil {
				t.Fatal(err)
			}
			if got, want := p.PartTarget(), 204*time.Millisecond; got != want {
				t.Errorf("PartTarget = %v, want %v", got, want)
			}
			checkParts(t, rec, p.PartTarget(), 2*time.Second)

			if len(rec.inits) != 1 {
				t.Fatalf("%d inits", len(rec.inits))
			}
			r := rec.inits[0].r
			if r.Name != "source" || r.Codecs != "avc1.64001f,mp4a.40.2" || r.Width != 1280 || r.Height != 720 ||
				r.FrameRate != 30 || r.Generation != 0 {
				t.Errorf("rendition = %+v", r)
			}
			if r.AverageBandwidth < 500_000 || r.Bandwidth < r.AverageBandwidth {
				t.Errorf("bandwidth estimate %d / %d", r.Bandwidth, r.AverageBandwidth)
			}
			if !bytes.Contains(rec.inits[0].b[:40], []byte("aid3")) {
				t.Error("ftyp lacks the aid3 brand")
			}

			segs := rec.segments(t)
			if len(segs) != 3 {
				t.Errorf("%d segments, want 3", len(segs))
			}
			for _, seg := range segs {
				if !seg[0].Independent {
					t.Errorf("segment %d does not start with a key frame", seg[0].MSN)
				}
				var d time.Duration
				for _, p := range seg {
					d += p.Duration
				}
				// The last frame's duration is a guess, off by RTMP's rounding of its timestamp.
				if (d - 2*time.Second).Abs() > time.Millisecond {
					t.Errorf("segment %d lasts %v, want 2s (one GOP)", seg[0].MSN, d)
				}
				if len(seg) != 10 {
					t.Errorf("segment %d has %d parts, want 10", seg[0].MSN, len(seg))
				}
			}
			if s := p.Stats(); s.ForcedCuts != 0 || s.LongParts+s.ShortParts != 0 || s.DroppedVideo != 0 || s.TimestampJumps != 0 {
				t.Errorf("stats %+v", s)
			}

			res, frames, dur := ffprobe(t, rec.file(t))
			if frames["video"] != countVideo(in.units) {
				t.Errorf("ffprobe decoded %d video frames, fed %d", frames["video"], countVideo(in.units))
			}
			if frames["audio"] < 6*48000/1024-2 {
				t.Errorf("ffprobe decoded %d audio frames", frames["audio"])
			}
			if (dur - 6*time.Second).Abs() > time.Millisecond {
				t.Errorf("video duration %v, want 6s", dur)
			}
			if res.Streams[0].Width != 1280 || res.Streams[0].CodecName != "h264" {
				t.Errorf("ffprobe streams %+v", res.Streams)
			}
			// Each segment on its own also decodes (a player may start anywhere).
			for i, seg := range segs {
				one := &recorder{inits: rec.inits, parts: seg}
				if _, f, _ := ffprobe(t, one.file(t)); f["video"] != 60 {
					t.Errorf("segment %d alone decodes %d frames", i, f["video"])
				}
			}

			hasOffsets := false
			for _, part := range rec.parts {
				var ps fmp4.Parts
				if err := ps.Unmarshal(part.Data); err != nil {
					t.Fatal(err)
				}
				for _, s := range ps[0].Tracks[0].Samples {
					hasOffsets = hasOffsets || s.PTSOffset != 0
				}
			}
			if hasOffsets != c.wantBF {
				t.Errorf("composition offsets present: %v, want %v", hasOffsets, c.wantBF)
			}
		})
	}
}

// TestGOPs checks where segments are cut for key-frame intervals shorter than, equal to and
// longer than the segment target.
func TestGOPs(t *testing.T) {
	for _, c := range []struct {
		gop        int
		segment    time.Duration // expected length of full segments
		forced     bool
		wantFrames int
	}{
		{30, time.Second, false, 30},
		{60, 2 * time.Second, false, 60},
		{150, 0, true, 0},
	} {
		t.Run("g"+strconv.Itoa(c.gop), func(t *testing.T) {
			in := readTS(t, encode(t, 10, x264("320x180", "30", c.gop, "-bf", "0"), aac()))
			rec := &recorder{}
			p, err := New(Config{Rendition: "g"}, in.video, in.audio, rec)
			if err != nil {
				t.Fatal(err)
			}
			feed(t, p, in, in.units)
			if err := p.Close(testCtx); err != nil {
				t.Fatal(err)
			}
			checkParts(t, rec, p.PartTarget(), 2*time.Second)
			segs := rec.segments(t)
			forced := 0
			for i, seg := range segs {
				var d time.Duration
				for _, p := range seg {
					d += p.Duration
				}
				if d > segmentLimit(2*time.Second) {
					t.Errorf("segment %d: %v over the limit", i, d)
				}
				if !seg[0].Independent {
					forced++
				}
				if c.segment > 0 && i < len(segs)-1 && d != c.segment {
					t.Errorf("segment %d: %v, want %v", i, d, c.segment)
				}
			}
			if got := p.Stats().ForcedCuts; got != forced || (forced > 0) != c.forced {
				t.Errorf("ForcedCuts %d, segments without a key frame %d, want forced=%v", got, forced, c.forced)
			}
			if _, frames, _ := ffprobe(t, rec.file(t)); frames["video"] != countVideo(in.units) {
				t.Errorf("decoded %d frames, fed %d", frames["video"], countVideo(in.units))
			}
		})
	}
}

// TestFrameRates checks rule P2 on real encodes at the usual frame rates.
func TestFrameRates(t *testing.T) {
	for _, c := range []struct {
		rate   string
		gop    int
		target time.Duration
	}{
		{"24", 48, 213 * time.Millisecond},
		{"25", 50, 204 * time.Millisecond},
		{"30000/1001", 60, 205 * time.Millisecond},
		{"30", 60, 204 * time.Millisecond},
		{"50", 100, 204 * time.Millisecond},
		{"60", 120, 204 * time.Millisecond},
	} {
		t.Run(strings.ReplaceAll(c.rate, "/", "_"), func(t *testing.T) {
			p, rec := packAll(t, Config{}, readTS(t, encode(t, 5, x264("320x180", c.rate, c.gop, "-bf", "2"), aac())), true)
			if p.PartTarget() != c.target {
				t.Errorf("PartTarget %v, want %v", p.PartTarget(), c.target)
			}
			checkParts(t, rec, p.PartTarget(), 2*time.Second)
			if s := p.Stats(); s.ForcedCuts != 0 || s.LongParts+s.ShortParts != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestCues adds timed metadata while a stream is packaged and reads it back from the parts.
func TestCues(t *testing.T) {
	in := readTS(t, encode(t, 4, x264("320x180", "30", 60), aac()))
	wall := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	p, rec := newAtClock(t, in, wall)
	cues := []media.Cue{
		{ID: "a", Time: wall.Add(2250 * time.Millisecond), Text: `{"q":"héllo"}`},
		{ID: "b", Time: wall.Add(2300 * time.Millisecond), Text: "second in the same part"},
		{ID: "c", Time: wall.Add(-time.Hour), Text: "stale: clamped into its part"},
	}
	added := 0
	rec.onPart = func(part media.Part) {
		// After part 1.0 goes out, add the cues: part 1.1 must carry them.
		if part.MSN == 1 && part.Index == 0 && added == 0 {
			for _, c := range cues {
				p.AddCue(c)
			}
			added = len(cues)
		}
	}
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	checkParts(t, rec, p.PartTarget(), 2*time.Second)

	found := false
	for _, part := range rec.parts {
		msgs, err := metadata.ParseEmsg(part.Data)
		if err != nil {
			t.Fatalf("part %d.%d: %v", part.MSN, part.Index, err)
		}
		if part.MSN != 1 || part.Index != 1 {
			if len(msgs) != 0 || len(part.Cues) != 0 {
				t.Errorf("part %d.%d carries %d emsg, %d cues", part.MSN, part.Index, len(msgs), len(part.Cues))
			}
			continue
		}
		found = true
		if len(part.Cues) != 3 || len(msgs) != 6 {
			t.Fatalf("part 1.1: %d cues, %d emsg", len(part.Cues), len(msgs))
		}
		var ps fmp4.Parts
		if err := ps.Unmarshal(part.Data); err != nil {
			t.Fatal(err)
		}
		// The part's presentation interval: B-frames shift it by composition offsets.
		vt := ps[0].Tracks[0]
		lo, hi, dts := uint64(math.MaxUint64), uint64(0), vt.BaseTime
		for _, smp := range vt.Samples {
			pts := uint64(int64(dts) + int64(smp.PTSOffset))
			lo, hi = min(lo, pts), max(hi, pts+uint64(smp.Duration))
			dts += uint64(smp.Duration)
		}
		if lo == vt.BaseTime {
			t.Error("no B-frames in the cue test stream")
		}
		for i, c := range cues {
			v1, v0 := msgs[2*i], msgs[2*i+1]
			if v1.Version != 1 || v1.SchemeIDURI != metadata.SchemeAOM || v1.Text != c.Text || v1.Timescale != 90000 {
				t.Errorf("cue %s v1: %+v", c.ID, v1)
			}
			if v0.Version != 0 || v0.SchemeIDURI != metadata.SchemeTwitch || v0.Text != c.Text || v0.PresentationTimeDelta != 0 {
				t.Errorf("cue %s v0: %+v", c.ID, v0)
			}
			if v1.ID != v0.ID || v1.EventDuration != metadata.DurationUnknown {
				t.Errorf("cue %s: ids %d/%d, duration %d", c.ID, v1.ID, v0.ID, v1.EventDuration)
			}
			if v1.PresentationTime < lo || v1.PresentationTime >= hi {
				t.Errorf("cue %s: presentation_time %d outside the part [%d, %d)", c.ID, v1.PresentationTime, lo, hi)
			}
		}
		// Cue b, 2.3 s after the first frame, falls inside the part (2.2-2.4 s, shifted by the
		// B-frame delay) and keeps its exact time; c, an hour stale, is clamped to the start.
		if want := uint64(207000); msgs[2].PresentationTime != want || want < lo || want >= hi {
			t.Errorf("cue b at %d, want %d in [%d, %d)", msgs[2].PresentationTime, want, lo, hi)
		}
		if msgs[4].PresentationTime != lo {
			t.Errorf("stale cue at %d, want the part start %d", msgs[4].PresentationTime, lo)
		}
		// The emsg boxes come before the moof: the part is still one playable fragment.
		if i := bytes.Index(part.Data, []byte("moof")); i < 0 || bytes.LastIndex(part.Data[:i], []byte("emsg")) < 0 {
			t.Error("emsg boxes are not in front of the moof")
		}
	}
	if !found {
		t.Fatal("no part 1.1")
	}
	if _, frames, _ := ffprobe(t, rec.file(t)); frames["video"] != countVideo(in.units) {
		t.Errorf("with emsg boxes, decoded %d frames of %d", frames["video"], countVideo(in.units))
	}
}
