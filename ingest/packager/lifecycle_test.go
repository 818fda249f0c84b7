package packager

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/media"
	"glasscast/metadata"
)

// TestReconnect: a second packager continues the first one's broadcast after a publisher
// reconnects with timestamps starting over.
func TestReconnect(t *testing.T) {
	first := readTS(t, encode(t, 3, x264("640x360", "30", 60), aac()))
	second := readTS(t, encode(t, 3, x264("640x360", "30", 60), aac()))
	wall := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &recorder{}
	a, _ := New(Config{Rendition: "r", Now: fixedClock(wall)}, first.video, first.audio, rec)
	feed(t, a, first, first.units)
	if err := a.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	st := a.State()
	partsA := len(rec.parts)
	last := rec.parts[partsA-1]
	if st.MSN != last.MSN+1 || st.PartTarget != a.PartTarget() || st.Sequence != uint32(partsA)+1 || st.Time < 3*time.Second {
		t.Fatalf("state %+v after %d parts ending %d.%d", st, partsA, last.MSN, last.Index)
	}

	b, _ := New(Config{Rendition: "r", Start: st, Now: fixedClock(wall.Add(10 * time.Second))}, second.video, second.audio, rec)
	feed(t, b, second, second.units)
	if err := b.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if len(rec.inits) != 2 || rec.inits[1].r.Generation != 0 || !bytes.Equal(rec.inits[0].b, rec.inits[1].b) {
		t.Errorf("an identical init after the reconnect must keep generation 0: %+v", rec.inits[1].r)
	}
	resumed := rec.parts[partsA]
	if resumed.MSN != st.MSN || resumed.Index != 0 || !resumed.Discontinuity || !resumed.Independent {
		t.Errorf("first part after reconnect: %+v", resumed)
	}
	if !resumed.ProgramDateTime.Equal(wall.Add(10 * time.Second)) {
		t.Errorf("PDT %v", resumed.ProgramDateTime)
	}
	for _, p := range rec.parts[partsA+1:] {
		if p.Discontinuity {
			t.Errorf("part %d.%d also marked discontinuous", p.MSN, p.Index)
		}
	}
	// One timeline: mfhd sequence and tfdt keep increasing across the two packagers.
	checkParts(t, rec, a.PartTarget(), 2*time.Second)
	var ps fmp4.Parts
	if err := ps.Unmarshal(resumed.Data); err != nil {
		t.Fatal(err)
	}
	if want := uint64(toTicks(st.Time, videoTimescale)); ps[0].Tracks[0].BaseTime != want {
		t.Errorf("resumed video tfdt %d, want %d", ps[0].Tracks[0].BaseTime, want)
	}

	// A reconnect with other codec parameters gets a new generation.
	c, _ := New(Config{Start: b.State()}, &codecs.H264{SPS: sps720, PPS: pps}, nil, rec)
	in := synth{num: 30, den: 1, gop: 30, frames: 40}.input()
	feed(t, c, in, in.units)
	c.Close(testCtx)
	if g := rec.inits[len(rec.inits)-1].r.Generation; g != 1 {
		t.Errorf("generation %d after a codec change across the reconnect", g)
	}
}

// TestParameterChange: new SPS/PPS mid-stream start a segment with a new init, marked as a
// discontinuity; from there every key frame carries them in-band too (Amazon's IVS player
// decodes with the first init's otherwise, and stops), and no other frame does.
func TestParameterChange(t *testing.T) {
	a := synth{num: 30, den: 1, gop: 60, frames: 90, sps: sps720}.input()
	b := synth{num: 30, den: 1, gop: 60, frames: 90, sps: sps360, start: 3 * time.Second}.input()
	rec := &recorder{}
	p, _ := New(Config{}, a.video, nil, rec)
	feed(t, p, a, a.units)
	feed(t, p, b, b.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if len(rec.inits) != 2 {
		t.Fatalf("%d inits", len(rec.inits))
	}
	r0, r1 := rec.inits[0].r, rec.inits[1].r
	if r0.Width != 1280 || r1.Width != 640 || r1.Height != 360 || r1.Generation != r0.Generation+1 || r1.FrameRate != 30 {
		t.Errorf("renditions %+v, %+v", r0, r1)
	}
	at := rec.inits[1].atParts
	if at == 0 || !rec.parts[at-1].Last || rec.parts[at].Index != 0 || !rec.parts[at].Independent {
		t.Errorf("new init not at a segment start (part %d)", at)
	}
	// The change forced a short segment: the key frame at 3 s came 1 s into segment 1.
	var d time.Duration
	for _, p := range rec.parts[:at] {
		if p.MSN == rec.parts[at-1].MSN {
			d += p.Duration
		}
	}
	if d != time.Second {
		t.Errorf("segment before the change lasts %v", d)
	}
	checkInBand(t, rec.parts, at, sps360, 2)
}

// TestParametersInBandAfterReconnect: a publisher that reconnects at another size, or at the
// same one after a change (a player that joined before holds an older packager's), has every
// key frame carry its parameter sets in-band; and so does a change in the frames the packager
// probes its start from.
func TestParametersInBandAfterReconnect(t *testing.T) {
	a := synth{num: 30, den: 1, gop: 30, frames: 40, sps: sps720}.input()
	b := synth{num: 30, den: 1, gop: 30, frames: 70, sps: sps360}.input()
	rec := &recorder{}
	p, _ := New(Config{}, a.video, nil, rec)
	feed(t, p, a, a.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	at := len(rec.parts)
	checkInBand(t, rec.parts, at, nil, 0)
	r, _ := New(Config{Start: p.State()}, b.video, nil, rec)
	feed(t, r, b, b.units)
	if err := r.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	checkInBand(t, rec.parts, at, sps360, 3)

	// Two frames at 720p, then 360p, all within the probe.
	c := synth{num: 30, den: 1, gop: 30, frames: 2, sps: sps720}.input()
	d := synth{num: 30, den: 1, gop: 30, frames: 40, sps: sps360, start: 2 * time.Second / 30}.input()
	rec = &recorder{}
	q, _ := New(Config{}, c.video, nil, rec)
	feed(t, q, c, c.units)
	feed(t, q, d, d.units)
	if err := q.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if len(rec.inits) != 2 {
		t.Fatalf("%d inits", len(rec.inits))
	}
	checkInBand(t, rec.parts, rec.inits[1].atParts, sps360, 2)
}

// checkInBand checks that parts from from on, and no others, have every key frame start with
// sps and the test PPS in-band, that part from alone is marked a discontinuity (none is, with
// sps nil), and that keys key frames carried them.
func checkInBand(t *testing.T, parts []media.Part, from int, sps []byte, keys int) {
	t.Helper()
	inBand := append(binary.BigEndian.AppendUint32(nil, uint32(len(sps))), sps...)
	inBand = append(binary.BigEndian.AppendUint32(inBand, uint32(len(pps))), pps...)
	got := 0
	for i, part := range parts {
		var ps fmp4.Parts
		if err := ps.Unmarshal(part.Data); err != nil {
			t.Fatal(err)
		}
		for j, sample := range ps[0].Tracks[0].Samples {
			want := sps != nil && i >= from && !sample.IsNonSyncSample
			if has := bytes.HasPrefix(sample.Payload, inBand); has != want {
				t.Errorf("part %d sample %d (key %v): parameter sets in-band %v", i, j, !sample.IsNonSyncSample, has)
			} else if has {
				got++
			}
		}
		if part.Discontinuity != (sps != nil && i == from) {
			t.Errorf("part %d.%d: discontinuity %v", part.MSN, part.Index, part.Discontinuity)
		}
	}
	if got != keys {
		t.Errorf("%d key frames with their parameter sets in-band, want %d", got, keys)
	}
}

// TestCloseEarly: a publisher that leaves before its first part is complete still gets its
// frames out, and one that never sent a key frame gets nothing. Three frames that agree with
// the SPS's frame rate fix PART-TARGET; two do not.
func TestCloseEarly(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 60, frames: 5, audio: true}.input()
	rec := &recorder{}
	p, _ := New(Config{}, in.video, in.audio, rec)
	var video int
	for _, u := range in.units {
		feed(t, p, in, []unit{u})
		if u.video {
			if video++; video == 2 && p.PartTarget() != 0 {
				t.Fatal("frame rate fixed after two frames")
			}
		}
	}
	if len(rec.parts) != 0 || p.PartTarget() != 204*time.Millisecond {
		t.Fatalf("after 5 frames: %d parts, PART-TARGET %v", len(rec.parts), p.PartTarget())
	}
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if len(rec.inits) != 1 || len(rec.parts) != 1 || !rec.parts[0].Last || p.PartTarget() != 204*time.Millisecond {
		t.Fatalf("%d inits, parts %+v", len(rec.inits), rec.parts)
	}
	if st := p.State(); st.MSN != 1 || st.Sequence != 2 {
		t.Errorf("state %+v", st)
	}

	rec = &recorder{}
	p, _ = New(Config{}, in.video, nil, rec)
	p.WriteH264(testCtx, 0, 0, [][]byte{filler(0x41, 100)})
	if err := p.Close(testCtx); err != nil || len(rec.inits)+len(rec.parts) != 0 {
		t.Fatalf("close without a key frame: %v, %d inits", err, len(rec.inits))
	}
	if st := p.State(); st.MSN != 0 || st.Sequence != 0 || st.Init != nil || st.PartTarget != 0 {
		t.Errorf("state %+v", st)
	}
}

type failingOutput struct{ recorder }

func (f *failingOutput) Part(context.Context, string, media.Part) error {
	return errors.New("origin gone")
}

func TestOutputError(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 60, frames: 30}.input()
	p, _ := New(Config{}, in.video, nil, &failingOutput{})
	var err error
	for _, u := range in.units {
		if err = p.WriteH264(testCtx, u.pts, u.dts, u.au); err != nil {
			break
		}
	}
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("origin gone")) {
		t.Fatalf("error %v", err)
	}
}

// TestConcurrentCues adds cues from another goroutine, as the metadata subscription does,
// while the publisher's goroutine writes: each cue lands in exactly one part.
func TestConcurrentCues(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 60, frames: 300, audio: true}.input()
	rec := &recorder{}
	p, _ := New(Config{}, in.video, in.audio, rec)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			p.AddCue(media.Cue{ID: strconv.Itoa(i), Time: time.Now(), Text: "cue " + strconv.Itoa(i)})
			_ = p.PartTarget()
			_ = p.Stats()
		}
	}()
	feed(t, p, in, in.units)
	<-done
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, part := range rec.parts {
		msgs, err := metadata.ParseEmsg(part.Data)
		if err != nil || len(msgs) != 2*len(part.Cues) {
			t.Fatalf("part %d.%d: %d emsg for %d cues, %v", part.MSN, part.Index, len(msgs), len(part.Cues), err)
		}
		for i, c := range part.Cues {
			if seen[c.ID] || msgs[2*i].Text != c.Text {
				t.Errorf("cue %s repeated or mismatched (%q)", c.ID, msgs[2*i].Text)
			}
			seen[c.ID] = true
		}
	}
	if len(seen) != 200 {
		t.Errorf("%d cues written, want 200", len(seen))
	}
}

// TestBadParameterSets: an SPS no decoder could use stops the packager instead of emitting
// parts without an init.
func TestBadParameterSets(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 60, frames: 30, sps: []byte{0x67, 0x64}}.input()
	rec := &recorder{}
	p, _ := New(Config{}, in.video, nil, rec)
	var err error
	for _, u := range in.units {
		if err = p.WriteH264(testCtx, u.pts, u.dts, u.au); err != nil {
			break
		}
	}
	if err == nil || len(rec.inits)+len(rec.parts) != 0 {
		t.Fatalf("error %v, %d inits, %d parts", err, len(rec.inits), len(rec.parts))
	}
	if err2 := p.WriteH264(testCtx, time.Hour, time.Hour, in.units[1].au); err2 != err {
		t.Errorf("next write: %v, want the first error again", err2)
	}
	if err2 := p.Close(testCtx); err2 != err {
		t.Errorf("Close: %v", err2)
	}
}

// TestFirstPartAtItsLastFrame: once three frames confirm the SPS's frame rate, the first part
// goes out as soon as the frame after it arrives, not after twelve frames of probing.
func TestFirstPartAtItsLastFrame(t *testing.T) {
	in := synth{num: 30, den: 1, gop: 60, frames: 12}.input()
	rec := &recorder{}
	p, _ := New(Config{}, in.video, nil, rec)
	for i, u := range in.units {
		feed(t, p, in, []unit{u})
		if len(rec.parts) > 0 {
			// Six frames make a 0.2 s part; the seventh closes it.
			if i != 6 {
				t.Errorf("first part out after %d frames, want 7", i+1)
			}
			return
		}
	}
	t.Fatal("no part from 12 frames")
}

// TestArrivalClockAnchor: the first key frame reaches the packager 150 ms late (an encoder
// warming up) and the frames after it on time. With Config.ArrivalClock the first part's
// program-date-time is the on-time anchor, earlier than the late key frame's arrival, and no
// frame is dated before it arrived; without it the late arrival dates the whole stream.
func TestArrivalClockAnchor(t *testing.T) {
	in := readTS(t, encode(t, 2, x264("320x180", "30", 30), aac()))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const late = 150 * time.Millisecond
	for _, arrival := range []bool{true, false} {
		var now time.Time
		rec := &recorder{}
		// As the ingest session's clock does: the frame being written is dated by the earliest
		// (arrival - dts) seen so far, plus its dts.
		var origin time.Time
		p, err := New(Config{ArrivalClock: arrival, Now: func() time.Time { return now }}, in.video, in.audio, rec)
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range in.units {
			at := t0.Add(u.dts)
			if u.dts < late {
				at = t0.Add(late) // everything sent in the first 150 ms arrives at once
			}
			if o := at.Add(-u.dts); origin.IsZero() || o.Before(origin) {
				origin = o
			}
			now = origin.Add(u.dts)
			feed(t, p, in, in.units[i:i+1])
		}
		if len(rec.parts) == 0 {
			t.Fatal("no part")
		}
		first := rec.parts[0].ProgramDateTime
		want := t0.Add(late)
		if arrival {
			want = t0
		}
		if d := first.Sub(want); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("ArrivalClock %v: first part dated %v after t0, want %v", arrival, first.Sub(t0), want.Sub(t0))
		}
	}
}
