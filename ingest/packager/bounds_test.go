package packager

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// TestVideoStalls: the video stops while the audio goes on, right after the first key frame
// (while the probe measures the frame rate) or after two seconds, then comes back. The audio
// the packager holds stays bounded all along: the probe starts the stream after
// probeAudioLimit, and the part being built keeps maxPartAudio of audio and drops the rest,
// logging it once. A pause shorter than that keeps all its audio. When the video comes back,
// the gap stays on the timeline, as in TestVideoPause, and every audio frame is kept again.
func TestVideoStalls(t *testing.T) {
	const aacFrame = 1024 * time.Second / 48000
	for _, c := range []struct {
		name   string
		before int           // video frames before the stall, at 30 fps
		stall  time.Duration // a whole number of seconds: the video comes back on a key frame
		sei    bool          // the publisher sends SEI-only video messages meanwhile
		drops  bool
	}{
		{name: "probe 60s", before: 1, stall: 60 * time.Second, drops: true},
		{name: "probe 2s", before: 1, stall: 2 * time.Second},
		{name: "after 2s, 60s", before: 60, stall: 60 * time.Second, drops: true},
		{name: "after 2s, 60s of SEI", before: 60, stall: 60 * time.Second, sei: true, drops: true},
		{name: "after 2s, 9s", before: 60, stall: 9 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := synth{num: 30, den: 1, gop: 30, audio: true, drop: map[int]bool{}}
			gone := int(c.stall.Seconds())*30 - c.before%30 // frames the stall takes
			s.frames = c.before + gone + 4*30
			for i := c.before; i < c.before+gone; i++ {
				s.drop[i] = true
			}
			in := s.input()
			resume := s.frameTime(c.before + gone)

			var logs bytes.Buffer
			rec := &recorder{}
			p, err := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, in.video, in.audio, rec)
			if err != nil {
				t.Fatal(err)
			}
			// All the audio the packager holds, in the probe or in the part being built.
			most := int(probeAudioLimit/aacFrame) + 2
			most = max(most, int(maxPartAudio/aacFrame)+1)
			held := 0
			fed := 0
			for i, u := range in.units {
				if c.sei && !u.video && i%2 == 0 {
					if err := p.WriteH264(testCtx, u.dts, u.dts, [][]byte{{6, 5, 1, 0x80}}); err != nil {
						t.Fatal(err)
					}
				}
				feed(t, p, in, in.units[i:i+1])
				if !u.video {
					fed++
				}
				held = max(held, len(p.probe)+len(p.audio.samples))
			}
			if err := p.Close(testCtx); err != nil {
				t.Fatal(err)
			}
			if held > most {
				t.Errorf("the packager held %d audio frames, at most %d allowed", held, most)
			}

			st := p.Stats()
			if !c.drops && st.DroppedAudio != 0 {
				t.Errorf("stats %+v: a %v pause keeps its audio", st, c.stall)
			}
			if c.drops {
				// What the gap holds past the bound, and up to a part more: the audio of the part
				// being built when the video stopped counts in the bound.
				over := time.Duration(st.DroppedAudio) * aacFrame
				want := resume - s.frameTime(c.before-1) - maxPartAudio
				if over < want-aacFrame || over > want+250*time.Millisecond {
					t.Errorf("dropped %v of audio, want %v and up to a part more", over, want)
				}
			}
			if n := strings.Count(logs.String(), "dropping audio"); n != min(1, st.DroppedAudio) {
				t.Errorf("the drop logged %d times:\n%s", n, logs.String())
			}

			checkStructure(t, rec)
			kept, after := 0, 0
			for _, part := range rec.parts {
				var ps fmp4.Parts
				if err := ps.Unmarshal(part.Data); err != nil {
					t.Fatal(err)
				}
				for _, tr := range ps[0].Tracks {
					if tr.ID != 2 {
						continue
					}
					at := int64(tr.BaseTime)
					for _, smp := range tr.Samples {
						kept++
						if toDuration(at, 48000) >= resume {
							after++
						}
						at += int64(smp.Duration)
					}
				}
			}
			if kept != fed-st.DroppedAudio {
				t.Errorf("%d audio frames written of %d, %d dropped", kept, fed, st.DroppedAudio)
			}
			want := 0
			for _, u := range in.units {
				if !u.video && u.dts >= resume {
					want++
				}
			}
			if after != want {
				t.Errorf("%d audio frames written after the video came back, %d fed", after, want)
			}
			if end := p.State().Time; st.TimestampJumps != 0 || (end-s.frameTime(s.frames)).Abs() > 25*time.Millisecond {
				t.Errorf("stats %+v, timeline ends at %v, want %v: the gap stays on it", st, end, s.frameTime(s.frames))
			}
		})
	}
}

// TestOversizedAudio: a frame larger than any AAC access unit or Opus packet (a hostile
// publisher's) is dropped and counted; the largest real ones pass.
func TestOversizedAudio(t *testing.T) {
	aac := &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 7}} // 7.1
	opusPacket := func(n int) []byte {
		b := make([]byte, n)
		b[0], b[1] = 31<<3|3, 6 // CELT fullband, six 20 ms frames: 120 ms
		return b
	}
	for _, c := range []struct {
		name  string
		opus  bool
		size  int
		taken bool
	}{
		{"AAC 7.1 at its most", false, 8 * 6144 / 8, true},
		{"AAC of 10 MB", false, 10 << 20, false},
		{"AAC just over the bound", false, maxAudioFrame + 1, false},
		{"Opus 120 ms at 510 kb/s", true, 510000 * 120 / 1000 / 8, true},
		{"Opus of 10 MB", true, 10 << 20, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var audio codecs.Codec = aac
			write := func(p *Packager, at time.Duration, b []byte) error { return p.WriteMPEG4Audio(testCtx, at, b) }
			frame, size := 1024*time.Second/48000, 300
			if c.opus {
				audio = &codecs.Opus{ChannelCount: 2}
				write = func(p *Packager, at time.Duration, b []byte) error { return p.WriteOpus(testCtx, at, b) }
				frame = 120 * time.Millisecond
			}
			rec := &recorder{}
			p, err := New(Config{}, nil, audio, rec)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				b := opusPacket(size)
				if i == 10 {
					b = opusPacket(c.size)
				}
				if err := write(p, time.Duration(i)*frame, b); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(testCtx); err != nil {
				t.Fatal(err)
			}
			largest, frames := 0, 0
			for _, part := range rec.parts {
				var ps fmp4.Parts
				if err := ps.Unmarshal(part.Data); err != nil {
					t.Fatal(err)
				}
				for _, smp := range ps[0].Tracks[0].Samples {
					largest = max(largest, len(smp.Payload))
					frames++
				}
			}
			dropped := 0
			if !c.taken {
				dropped = 1
			}
			if st := p.Stats(); st.DroppedAudio != dropped || frames != 20-dropped || (largest == c.size) != c.taken {
				t.Errorf("stats %+v, %d frames written, the largest %d bytes", st, frames, largest)
			}
		})
	}
}

// TestVideoStallThenClockJump: the video stalls past maxPartAudio, and the publisher's clock
// then jumps an hour ahead, audio first. While the packager drops audio at the bound it
// follows the audio's clock only as it runs on, so the video that comes back an hour ahead
// is a clock jump the timeline is rebased over, as without the stall, not an hour's pause
// kept on the timeline.
func TestVideoStallThenClockJump(t *testing.T) {
	s := synth{num: 30, den: 1, gop: 30, frames: 60 + 600, audio: true, drop: map[int]bool{}}
	for i := 60; i < 60+600; i++ {
		s.drop[i] = true // 20 s without video
	}
	in := s.input()
	after := synth{num: 30, den: 1, gop: 30, frames: 120, audio: true, start: time.Hour}.input()
	rec := &recorder{}
	p, err := New(Config{}, in.video, in.audio, rec)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, in, in.units)
	feed(t, p, after, after.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	checkStructure(t, rec)
	st := p.Stats()
	t.Logf("stats %+v, timeline ends at %v", st, p.State().Time)
	if end := p.State().Time; st.TimestampJumps != 1 || end > time.Minute {
		t.Errorf("stats %+v, timeline ends at %v: the jump must be rebased over", st, end)
	}
}
