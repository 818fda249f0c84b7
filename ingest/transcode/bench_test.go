package transcode

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"glasscast/ingest/packager"
)

// BenchmarkRungs runs ffmpeg as the ladder does on 20 s of the 720p30 test pattern, as fast as
// it goes: decoding alone, each rung of the STANDARD ladder alone (decode included) and the
// whole ladder in one process. rtf is media seconds per wall second; cores is CPU seconds per
// media second, the share of this machine one live stream takes.
func BenchmarkRungs(b *testing.B) {
	const seconds = 20
	src := encode(b, seconds, "1280x720", 30, 60, "-output_ts_offset", "10")
	rungs, err := Plan(TypeStandard, "", Input{Width: 1280, Height: 720, FrameRate: 30})
	if err != nil {
		b.Fatal(err)
	}
	rungs = rungs[1:] // the source is passed through
	cases := []struct {
		name  string
		rungs []Rung
	}{{"decode", nil}, {"ladder", rungs}}
	for _, r := range rungs {
		cases = append(cases, struct {
			name  string
			rungs []Rung
		}{r.Name, []Rung{r}})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var wall, cpu time.Duration
			for range b.N {
				args := ffmpegArgs(c.rungs, "veryfast")
				var outs []*os.File
				if c.rungs == nil {
					args = append(args[:len(args):len(args)], "-map", "0:v:0", "-f", "null", "-")
				}
				for i := range c.rungs {
					f, err := os.Create(filepath.Join(b.TempDir(), c.rungs[i].Name+".ts"))
					if err != nil {
						b.Fatal(err)
					}
					outs = append(outs, f)
				}
				in, err := os.Open(src)
				if err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command("ffmpeg", args...)
				cmd.Stdin, cmd.ExtraFiles = in, outs
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				wall += time.Since(start)
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				in.Close()
				for _, f := range outs {
					f.Close()
				}
			}
			media := time.Duration(b.N) * seconds * time.Second
			b.ReportMetric(media.Seconds()/wall.Seconds(), "rtf")
			b.ReportMetric(cpu.Seconds()/media.Seconds(), "cores")
		})
	}
}

// BenchmarkLatency feeds 10 s of 720p30 + AAC in real time, once through the ladder of a
// STANDARD channel and once through a lone packager as a BASIC channel is, and reports how
// long after the frame that completes a part the part is published (p50, p95, max after the
// first segment; the worst of the first segment, which waits for ffmpeg to start, on its own):
// the latency transcoding adds at the ingest, the gate waiting for ffmpeg's renditions.
func BenchmarkLatency(b *testing.B) {
	in := readTS(b, encode(b, 10, "1280x720", 30, 60))
	for _, mode := range []string{"passthrough", "ladder"} {
		b.Run(mode, func(b *testing.B) {
			var delays []time.Duration
			var first time.Duration
			for range b.N {
				sink := newRecSink()
				written := map[time.Duration]time.Time{} // input dts -> when it was written
				var start time.Time
				var anchorIn time.Duration
				var anchorWall time.Time
				var write func(u unit) error
				var close func() error
				if mode == "ladder" {
					l, err := New(testCtx, Config{ChannelType: TypeStandard}, in.video, in.audio, sink)
					if err != nil {
						b.Fatal(err)
					}
					write = func(u unit) error {
						if u.video {
							return l.WriteH264(testCtx, u.pts, u.dts, u.au)
						}
						return l.WriteMPEG4Audio(testCtx, u.pts, u.data)
					}
					close = func() error {
						err := l.Close(testCtx)
						anchorIn, anchorWall = l.anchorIn, l.anchorWall
						return err
					}
				} else {
					var cur time.Duration
					p, err := packager.New(packager.Config{Rendition: SourceName, Now: func() time.Time {
						anchorIn, anchorWall = cur, time.Now()
						return anchorWall
					}}, in.video, in.audio, sink)
					if err != nil {
						b.Fatal(err)
					}
					write = func(u unit) error {
						if u.video {
							cur = u.dts
							return p.WriteH264(testCtx, u.pts, u.dts, u.au)
						}
						return p.WriteMPEG4Audio(testCtx, u.pts, u.data)
					}
					close = func() error { return p.Close(testCtx) }
				}
				start = time.Now()
				for _, u := range in.units {
					time.Sleep(time.Until(start.Add(u.dts - in.units[0].dts)))
					if u.video {
						written[u.dts] = time.Now()
					}
					if err := write(u); err != nil {
						b.Fatal(err)
					}
				}
				if err := close(); err != nil {
					b.Fatal(err)
				}
				for name, parts := range sink.parts {
					for _, rp := range parts[:len(parts)-1] { // the last one waits for Close
						// The frame after the part's end completes it.
						end := anchorIn + partEnd(&rp.p).Sub(anchorWall)
						var at time.Time
						for dts, w := range written {
							if dts >= end-time.Millisecond && (at.IsZero() || w.Before(at)) {
								at = w
							}
						}
						if at.IsZero() || name != SourceName && mode != "ladder" {
							continue
						}
						if at.Sub(start) < 2*time.Second {
							// The first segment waits for ffmpeg to start: reported on its own.
							first = max(first, rp.at.Sub(at))
						} else {
							delays = append(delays, rp.at.Sub(at))
						}
					}
				}
			}
			slices.Sort(delays)
			pct := func(p float64) float64 { return delays[int(p*float64(len(delays)-1))].Seconds() * 1000 }
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
			b.ReportMetric(pct(1), "max-ms")
			b.ReportMetric(first.Seconds()*1000, "first-segment-ms")
		})
	}
}
