package packager

import (
	"context"
	"testing"
	"time"

	"glasscast/media"
)

// countingOutput counts what it is given and keeps nothing, like an origin that is never
// the bottleneck.
type countingOutput struct {
	parts, bytes int
}

func (c *countingOutput) Init(context.Context, media.Rendition, []byte) error { return nil }
func (c *countingOutput) Part(_ context.Context, _ string, p media.Part) error {
	c.parts++
	c.bytes += len(p.Data)
	return nil
}

// BenchmarkPackager measures packaging of a 720p30 stream at about 3 Mbps with 128 kb/s AAC:
// one op is one 200 ms part (6 video frames and about 9 audio frames).
func BenchmarkPackager(b *testing.B) {
	// 3 Mbps at 30 fps is 12.5 kB per frame on average; a key frame every 2 s is five times
	// larger than the others.
	const seconds = 20
	in := synth{num: 30, den: 1, gop: 60, frames: 30 * seconds, keySize: 55_000, frameSize: 11_800, audio: true}.input()
	for i := range in.units {
		if !in.units[i].video {
			in.units[i].data = make([]byte, 340) // 128 kb/s at 48 kHz
		}
	}
	out := &countingOutput{}
	p, err := New(Config{Rendition: "720p30"}, in.video, in.audio, out)
	if err != nil {
		b.Fatal(err)
	}
	var offset time.Duration
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for start := out.parts; out.parts == start; i++ {
			if i == len(in.units) {
				i, offset = 0, offset+seconds*time.Second
			}
			u := in.units[i]
			if u.video {
				err = p.WriteH264(testCtx, u.pts+offset, u.dts+offset, u.au)
			} else {
				err = p.WriteMPEG4Audio(testCtx, u.pts+offset, u.data)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if out.parts > 0 {
		b.SetBytes(int64(out.bytes / out.parts))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "parts/s")
}
