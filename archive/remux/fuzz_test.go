package remux

import (
	"io"
	"testing"
	"time"
)

// FuzzRemux feeds arbitrary segment bytes (and init segments) to the remuxer: segments come
// from an origin, which may be another process. It must fail cleanly, never panic.
func FuzzRemux(f *testing.F) {
	col := cmafStreamSized(f, "32x32", 6, time.Second, "cue")
	f.Add(col.init, col.segs[0].Data)
	f.Add(col.init, col.segs[1].Data[:len(col.segs[1].Data)/2])
	f.Add([]byte("not an init"), []byte("not a segment"))
	f.Fuzz(func(t *testing.T, init, seg []byte) {
		tracks, err := ParseInit(init)
		if err != nil {
			return
		}
		tl := NewTimeline(0)
		tl.SetInit(tracks)
		file, err := Create(io.Discard, tl)
		if err != nil {
			return
		}
		_, _, _ = file.WriteSegment(Segment{Data: seg}, WriteOptions{WantKeyframe: func(time.Duration) bool { return true }})
		if file.Size()%packetSize != 0 {
			t.Fatalf("%d bytes written: not whole packets", file.Size())
		}
	})
}
