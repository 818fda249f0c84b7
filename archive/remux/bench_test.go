package remux

import (
	"io"
	"testing"
	"time"
)

// BenchmarkRemux720p remuxes 10 s of the DESIGN.md 720p30 test pattern (x264 veryfast, AAC):
// the CPU one recorded rendition costs per 10 s of media, and the throughput in fMP4 bytes.
func BenchmarkRemux720p(b *testing.B) {
	col := cmafStreamSized(b, "1280x720", 10, time.Hour, "")
	var size int64
	for _, s := range col.segs {
		size += int64(len(s.Data))
	}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		tracks, err := ParseInit(col.init)
		if err != nil {
			b.Fatal(err)
		}
		tl := NewTimeline(0)
		tl.SetInit(tracks)
		f, err := Create(io.Discard, tl)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range col.segs {
			if _, _, err := f.WriteSegment(s, WriteOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
