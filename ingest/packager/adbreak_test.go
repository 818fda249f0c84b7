package packager

import (
	"testing"
	"time"

	"glasscast/media"
	"glasscast/metadata"
)

// TestAdBreakOnSegmentBoundaries asks for a 4 s break in the middle of a segment: the splice
// out goes on the next segment's first part, the splice in on the first segment at least 4 s
// later, both with SCTE-35 splice_inserts at those media times.
func TestAdBreakOnSegmentBoundaries(t *testing.T) {
	in := readTS(t, encode(t, 10, x264("320x180", "30", 60), aac()))
	wall := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	p, rec := newAtClock(t, in, wall)
	rec.onPart = func(part media.Part) {
		if part.MSN == 0 && part.Index == 2 {
			p.AddCue(media.Cue{ID: "brk", AdBreak: &media.AdBreak{Planned: 4 * time.Second}})
		}
	}
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	var ends []media.Part
	var segStart = map[uint64]time.Duration{}
	var at time.Duration
	for _, part := range rec.parts {
		if part.Index == 0 {
			segStart[part.MSN] = at
		}
		at += part.Duration
		if len(part.Cues) > 0 {
			ends = append(ends, part)
		}
	}
	if len(ends) != 2 {
		t.Fatalf("%d parts with cues, want 2", len(ends))
	}
	out, back := ends[0], ends[1]
	if out.MSN != 1 || out.Index != 0 || back.Index != 0 || back.MSN != 3 {
		t.Fatalf("splice out in part %d.%d, in in %d.%d; want 1.0 and 3.0", out.MSN, out.Index, back.MSN, back.Index)
	}
	o, i := out.Cues[0].AdBreak, back.Cues[0].AdBreak
	if o.In || !i.In || !o.Start.Equal(out.ProgramDateTime) || !i.Start.Equal(o.Start) {
		t.Fatalf("ends %+v / %+v", o, i)
	}
	if want := segStart[3] - segStart[1]; i.Duration != want || want < 4*time.Second {
		t.Errorf("break lasted %v, want %v (>= 4 s)", i.Duration, want)
	}
	so, err := metadata.ParseSpliceInsert(o.SCTE35)
	if err != nil || !so.OutOfNetwork || so.PTS == nil || so.BreakDuration == nil || *so.BreakDuration != 4*90000 {
		t.Fatalf("splice out %+v pts %d dur %d, %v", so, *so.PTS, *so.BreakDuration, err)
	}
	si, err := metadata.ParseSpliceInsert(i.SCTE35)
	if err != nil || si.OutOfNetwork || si.EventID != so.EventID || si.PTS == nil || *si.PTS-*so.PTS != ticks90k(i.Duration) {
		t.Fatalf("splice in %+v, %v", si, err)
	}
	if msgs, _ := metadata.ParseEmsg(out.Data); len(msgs) != 0 {
		t.Errorf("the splice out wrote %d ID3 emsg", len(msgs))
	}
}

// TestAdBreakAcrossReconnect: a packager that continues a broadcast (a publisher reconnected)
// writes the splice in of the break its predecessor started.
func TestAdBreakAcrossReconnect(t *testing.T) {
	in := readTS(t, encode(t, 4, x264("320x180", "30", 60), aac()))
	wall := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	p, _ := newAtClock(t, in, wall)
	p.AddCue(media.Cue{ID: "brk", AdBreak: &media.AdBreak{Planned: 2 * time.Second}})
	feed(t, p, in, in.units[:len(in.units)/3]) // the break starts with segment 0, then the publisher leaves
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	st := p.State()
	if st.AdBreak == nil || st.AdBreak.AdBreak.In {
		t.Fatalf("state carries no running break: %+v", st.AdBreak)
	}
	rec2 := &recorder{}
	p2, err := New(Config{Now: fixedClock(wall.Add(st.Time)), Start: st}, in.video, in.audio, rec2)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p2, in, in.units)
	if err := p2.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	for _, part := range rec2.parts {
		for _, c := range part.Cues {
			if c.ID == "brk" && c.AdBreak != nil && c.AdBreak.In {
				if c.AdBreak.Duration < 2*time.Second || !c.AdBreak.Start.Equal(st.AdBreak.AdBreak.Start) {
					t.Fatalf("splice in %+v", c.AdBreak)
				}
				return
			}
		}
	}
	t.Fatal("the successor wrote no splice in")
}
