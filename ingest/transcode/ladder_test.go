package transcode

import (
	"context"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"glasscast/ingest/packager"
	"glasscast/media"
	"glasscast/metadata"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const frame30 = time.Second / 30

// patientLag is the MaxLag of tests that are not about lag: a machine shared with other test
// runs may slow ffmpeg down for seconds, which must not end a run these tests check.
const patientLag = 30 * time.Second

// TestLadderStandard publishes 8 s of 720p30 to a STANDARD ladder with real ffmpeg and checks
// the IVS ladder below the source, frame-exact alignment of every rendition with the source,
// decodable output, lockstep publication and a cue at one media time everywhere.
func TestLadderStandard(t *testing.T) {
	in := readTS(t, encode(t, 8, "1280x720", 30, 60))
	sink := newRecSink()
	l, err := New(testCtx, Config{ChannelType: TypeStandard, Event: sink.event, Logger: testLogger(t), MaxLag: patientLag,
		Packager: packager.Config{Start: packager.Start{MSN: 1000, Generation: 70}}}, in.video, in.audio, sink)
	if err != nil {
		t.Fatal(err)
	}
	play(t, l, in.units, 1, func(i int) {
		if i == len(in.units)/2 {
			l.AddCue(media.Cue{ID: "cue-1", Time: time.Now(), Text: "hello ladder"})
		}
	})
	if err := l.Close(testCtx); err != nil {
		t.Fatal(err)
	}

	want := []string{"160p30", "360p30", "480p30", "source"}
	if got := sink.names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("renditions %v, want %v", got, want)
	}
	if len(sink.events) != 0 {
		t.Errorf("events: %v", sink.events)
	}
	sizes := map[string][2]int{"source": {1280, 720}, "480p30": {854, 480}, "360p30": {640, 360}, "160p30": {284, 160}}
	src := sink.segments(t, "source")
	for _, name := range want {
		init := sink.inits[name][0].r
		if init.Width != sizes[name][0] || init.Height != sizes[name][1] || init.FrameRate != 30 ||
			!strings.HasPrefix(init.Codecs, "avc1.") || !strings.HasSuffix(init.Codecs, ",mp4a.40.2") || init.Generation != 70 {
			t.Errorf("%s init: %+v", name, init)
		}
		segs := sink.segments(t, name)
		if len(segs) != len(src) || len(segs) < 4 {
			t.Errorf("%s: %d segments, source %d", name, len(segs), len(src))
		}
		for msn, parts := range segs {
			ref, ok := src[msn]
			if !ok {
				t.Errorf("%s: segment %d not in the source", name, msn)
				continue
			}
			if d := parts[0].p.ProgramDateTime.Sub(ref[0].p.ProgramDateTime); d.Abs() > time.Millisecond {
				t.Errorf("%s: segment %d starts %v after the source's", name, msn, d)
			}
			if d := segDuration(parts) - segDuration(ref); d.Abs() > frame30 {
				t.Errorf("%s: segment %d lasts %v, the source's %v", name, msn, segDuration(parts), segDuration(ref))
			}
			if !parts[0].p.Independent {
				t.Errorf("%s: segment %d does not start with a key frame", name, msn)
			}
			if len(parts) != len(ref) {
				t.Errorf("%s: segment %d has %d parts, the source's %d", name, msn, len(parts), len(ref))
				continue
			}
			for i, rp := range parts {
				// Lockstep: each part is published with the source's part of the same position.
				if rp.at.Sub(ref[i].at).Abs() > 150*time.Millisecond {
					t.Errorf("%s: part %d.%d published %v apart from the source's", name, msn, i, rp.at.Sub(ref[i].at))
				}
				// Same audio frames as the source's part: switching between parts is seamless.
				if got, want := audioSpan(t, rp.p), audioSpan(t, ref[i].p); got != want {
					t.Errorf("%s: part %d.%d has audio %v, the source's %v", name, msn, i, got, want)
				}
			}
		}
		w, h, frames := ffprobe(t, sink.file(t, name, 70))
		if w != sizes[name][0] || h != sizes[name][1] || frames["video"] < 235 || frames["audio"] < 350 {
			t.Errorf("%s decodes as %dx%d, frames %v", name, w, h, frames)
		}
	}
	// The cue, in every rendition, at one presentation time.
	var at []uint64
	for _, name := range want {
		for _, rp := range sink.parts[name] {
			msgs, err := metadata.ParseEmsg(rp.p.Data)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m.Version == 1 && m.Text == "hello ladder" {
					at = append(at, m.PresentationTime)
				}
			}
		}
	}
	if len(at) != len(want) {
		t.Fatalf("cue found %d times across %d renditions", len(at), len(want))
	}
	for _, a := range at[1:] {
		if a != at[0] {
			t.Errorf("cue presentation times differ: %v", at)
		}
	}
	st, rs := l.State()
	if len(rs) != 3 || rs["480p30"].MSN != st.MSN || rs["480p30"].Generation != 70 || rs["480p30"].Init == nil {
		t.Errorf("state: %+v %+v", st, rs["480p30"])
	}
}

// audioSpan is the first audio sample time and the sample count of a part's audio track.
func audioSpan(t *testing.T, p media.Part) [2]uint64 {
	var parts fmp4.Parts
	if err := parts.Unmarshal(p.Data); err != nil {
		t.Fatal(err)
	}
	for _, pt := range parts {
		for _, tr := range pt.Tracks {
			if tr.ID == 2 {
				return [2]uint64{tr.BaseTime, uint64(len(tr.Samples))}
			}
		}
	}
	return [2]uint64{}
}

func segDuration(parts []recPart) time.Duration {
	var d time.Duration
	for _, rp := range parts {
		d += rp.p.Duration
	}
	return d
}

// TestLadderSurvivesFFmpeg kills ffmpeg mid-stream: every rendition goes on without a gap,
// copying the source (new init, discontinuity) until a restarted ffmpeg takes over again at a
// segment boundary; both show in the session events.
func TestLadderSurvivesFFmpeg(t *testing.T) {
	in := readTS(t, encode(t, 14, "1280x720", 30, 30))
	sink := newRecSink()
	l, err := New(testCtx, Config{ChannelType: TypeStandard, Event: sink.event, Logger: testLogger(t), MaxLag: patientLag},
		in.video, in.audio, sink)
	if err != nil {
		t.Fatal(err)
	}
	var killed int
	play(t, l, in.units, 1, func(i int) {
		if in.units[i].dts > 4*time.Second && killed == 0 && l.run != nil {
			killed = l.run.proc.cmd.Process.Pid
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	})
	if err := l.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("ffmpeg never ran")
	}
	if strings.Join(sink.events, ",") != EventFailure+"/"+CodeExited+","+EventRecovery+"/" {
		t.Errorf("events %v", sink.events)
	}
	src := sink.segments(t, "source")
	for _, name := range []string{"480p30", "360p30", "160p30"} {
		segs := sink.segments(t, name)
		if len(segs) != len(src) {
			t.Errorf("%s: %d segments, source %d", name, len(segs), len(src))
		}
		inits := sink.inits[name]
		// transcoded, the source's copy, transcoded again
		if len(inits) != 3 || inits[1].r.Width != 1280 || inits[2].r.Width == 1280 ||
			inits[1].r.Generation != inits[0].r.Generation+1 || inits[2].r.Generation != inits[1].r.Generation+1 {
			t.Fatalf("%s inits: %+v", name, inits)
		}
		disc := 0
		for _, rp := range sink.parts[name] {
			if rp.p.Discontinuity {
				disc++
			}
		}
		if disc != 2 {
			t.Errorf("%s: %d discontinuities, want 2", name, disc)
		}
		for msn, parts := range segs {
			if d := parts[0].p.ProgramDateTime.Sub(src[msn][0].p.ProgramDateTime); d.Abs() > time.Millisecond {
				t.Errorf("%s: segment %d starts %v after the source's", name, msn, d)
			}
		}
		for _, gen := range []int{inits[0].r.Generation, inits[2].r.Generation} {
			if w, _, frames := ffprobe(t, sink.file(t, name, gen)); w != inits[0].r.Width || frames["video"] < 30 {
				t.Errorf("%s generation %d: width %d, frames %v", name, gen, w, frames)
			}
		}
	}
	if err := syscall.Kill(killed, 0); err == nil {
		t.Errorf("killed ffmpeg %d still exists (a zombie?)", killed)
	}
}

// TestLadderWithoutFFmpeg: with no ffmpeg the STANDARD channel is passed through as BASIC is.
func TestLadderWithoutFFmpeg(t *testing.T) {
	in := readTS(t, encode(t, 3, "640x360", 30, 30))
	sink := newRecSink()
	l, err := New(testCtx, Config{ChannelType: TypeAdvancedHD, FFmpeg: "/nonexistent/ffmpeg", Event: sink.event, Logger: testLogger(t)},
		in.video, in.audio, sink)
	if err != nil {
		t.Fatal(err)
	}
	play(t, l, in.units, 10, nil)
	if err := l.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if got := sink.names(); len(got) != 1 || got[0] != "source" || len(sink.segments(t, "source")) < 2 {
		t.Fatalf("renditions %v", got)
	}
	if strings.Join(sink.events, ",") != EventFailure+"/"+CodeUnavailable {
		t.Errorf("events %v", sink.events)
	}
}

// TestLadderSlowFFmpeg runs ffmpeg at half real time. The ffmpeg is the real one, slowed by a
// wrapper script that adds -readrate 0.5: this machine cannot be made reliably too slow for a
// real encode otherwise. The stream must report STARVING while ffmpeg lags, end the run once it
// is MaxLag behind (buffering stays bounded), and keep every rendition going from the source.
func TestLadderSlowFFmpeg(t *testing.T) {
	l, in, sink := slowLadder(t, 0.5, 10, 2*time.Second)
	starving := false
	play(t, l, in.units, 1, func(int) { starving = starving || l.Starving() })
	if err := l.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if !starving {
		t.Error("never STARVING while ffmpeg ran at half speed")
	}
	if len(sink.events) == 0 || sink.events[0] != EventFailure+"/"+CodeTooSlow {
		t.Errorf("events %v", sink.events)
	}
	src := sink.segments(t, "source")
	for _, name := range []string{"160p30"} {
		if segs := sink.segments(t, name); len(segs) != len(src) {
			t.Errorf("%s: %d segments, source %d", name, len(segs), len(src))
		}
	}
}

// TestLadderDrainsLag ends a stream while ffmpeg is seconds behind it, as on loaded cores (a
// wrapper adds -readrate 0.6, as TestLadderSlowFFmpeg does): within MaxLag, so the run is
// kept, and at the end each rendition's tail must come out, every segment as long as the
// source's, the last one too.
func TestLadderDrainsLag(t *testing.T) {
	l, in, sink := slowLadder(t, 0.6, 6.5, 5*time.Second)
	play(t, l, in.units, 1, nil)
	closed := time.Now()
	ctx, cancel := context.WithTimeout(testCtx, 15*time.Second) // as ingest's Detach flushes
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURES Close took %v", time.Since(closed).Round(10*time.Millisecond))
	if len(sink.events) != 0 {
		t.Fatalf("events %v: the run was not kept to the end", sink.events)
	}
	src, segs := sink.segments(t, "source"), sink.segments(t, "160p30") // the one rung of 360p input
	if len(segs) != len(src) {
		t.Errorf("160p30: %d segments, source %d", len(segs), len(src))
	}
	for msn, ref := range src {
		if d := segDuration(segs[msn]) - segDuration(ref); d.Abs() > frame30 {
			t.Errorf("160p30: segment %d lasts %v, the source's %v", msn, segDuration(segs[msn]), segDuration(ref))
		}
	}
}

// TestLadderInputs runs other inputs through their ladders: H.265 (decoded by ffmpeg, the
// source passed through as H.265), 60 fps (30 fps rungs keep every other frame and every key
// frame) and an ADVANCED_SD channel (no source rendition; every rung transcoded, the top one at
// the input's frame rate).
func TestLadderInputs(t *testing.T) {
	for _, c := range []struct {
		name, typ, size string
		rate            int
		extra           []string
		want            map[string][3]int // width, height, frames per second
	}{
		{"h265", TypeStandard, "640x360", 30, []string{"-c:v", "libx265", "-x265-params", "log-level=error:bframes=0"},
			map[string][3]int{"source": {640, 360, 30}, "160p30": {284, 160, 30}}},
		{"60fps", TypeStandard, "640x360", 60, nil,
			map[string][3]int{"source": {640, 360, 60}, "160p30": {284, 160, 30}}},
		{"advanced-sd", TypeAdvancedSD, "1280x720", 30, nil,
			map[string][3]int{"480p30": {854, 480, 30}, "360p30": {640, 360, 30}, "160p30": {284, 160, 30}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := readTS(t, encode(t, 5, c.size, c.rate, 2*c.rate, c.extra...))
			sink := newRecSink()
			l, err := New(testCtx, Config{ChannelType: c.typ, Event: sink.event, Logger: testLogger(t), MaxLag: patientLag},
				in.video, in.audio, sink)
			if err != nil {
				t.Fatal(err)
			}
			play(t, l, in.units, 1, nil)
			if err := l.Close(testCtx); err != nil {
				t.Fatal(err)
			}
			if len(sink.names()) != len(c.want) || len(sink.events) != 0 {
				t.Fatalf("renditions %v, events %v", sink.names(), sink.events)
			}
			var ref map[uint64][]recPart
			for _, name := range sink.names() {
				w := c.want[name]
				init := sink.inits[name][0].r
				if init.Width != w[0] || init.Height != w[1] || init.FrameRate != float64(w[2]) {
					t.Errorf("%s: %+v, want %v", name, init, w)
				}
				segs := sink.segments(t, name)
				if ref == nil {
					ref = segs
				}
				if len(segs) != len(ref) || len(segs) < 2 {
					t.Errorf("%s: %d segments, %d in another rendition", name, len(segs), len(ref))
				}
				for msn, parts := range segs {
					if r, ok := ref[msn]; !ok || parts[0].p.ProgramDateTime.Sub(r[0].p.ProgramDateTime).Abs() > time.Millisecond {
						t.Errorf("%s: segment %d not aligned", name, msn)
					}
				}
				gw, gh, frames := ffprobe(t, sink.file(t, name, init.Generation))
				if gw != w[0] || gh != w[1] || frames["video"] < 5*w[2]-2 || frames["audio"] < 200 {
					t.Errorf("%s decodes as %dx%d, frames %v", name, gw, gh, frames)
				}
			}
		})
	}
}

// TestLadderReconnect continues a ladder with a second publisher's, as a reconnect within the
// grace window does: every rendition goes on at the next MSN with a discontinuity, and keeps
// its init generation when its init is unchanged.
func TestLadderReconnect(t *testing.T) {
	in := readTS(t, encode(t, 4, "640x360", 30, 30))
	sink := newRecSink()
	var srcState packager.Start
	var states map[string]packager.Start
	for i := range 2 {
		l, err := New(testCtx, Config{ChannelType: TypeStandard, Event: sink.event, Logger: testLogger(t), Renditions: states, MaxLag: patientLag,
			Packager: packager.Config{Start: srcState}}, in.video, in.audio, sink)
		if err != nil {
			t.Fatal(err)
		}
		play(t, l, in.units, 1, nil)
		if err := l.Close(testCtx); err != nil {
			t.Fatal(err)
		}
		srcState, states = l.State()
		if i == 0 && (states["160p30"].MSN != srcState.MSN || states["160p30"].Sequence == 0) {
			t.Fatalf("state after the first publisher: source %+v, 160p30 %+v", srcState, states["160p30"])
		}
	}
	for _, name := range []string{"source", "160p30"} {
		segs := sink.segments(t, name) // contiguous MSNs across the reconnect
		disc := 0
		for _, rp := range sink.parts[name] {
			if rp.p.Discontinuity {
				disc++
			}
		}
		inits := sink.inits[name]
		if disc != 1 || len(segs) < 6 || inits[len(inits)-1].r.Generation != inits[0].r.Generation {
			t.Errorf("%s: %d segments, %d discontinuities, inits %d..%d", name, len(segs), disc,
				inits[0].r.Generation, inits[len(inits)-1].r.Generation)
		}
	}
}
