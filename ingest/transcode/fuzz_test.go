package transcode

import (
	"bytes"
	"testing"
)

// FuzzAccessUnit feeds arbitrary access units, as a publisher may send them, through the code
// that reads NAL unit headers and rebuilds access units for ffmpeg: it must never panic, never
// keep the caller's memory, and keep every NAL unit but access unit delimiters, adding the
// parameter sets in force in front of a key frame that lacks them.
func FuzzAccessUnit(f *testing.F) {
	f.Add(false, []byte{0x67, 0x42, 0xc0, 0x1e, 0xff, 0x68, 0xce, 0x3c, 0x80, 0xff, 0x65, 0x88, 0x84})
	f.Add(false, []byte{0x09, 0xf0, 0xff, 0x41, 0x9a, 0x02, 0xff, 0xff})
	f.Add(true, []byte{0x40, 0x01, 0x0c, 0xff, 0x42, 0x01, 0x01, 0xff, 0x44, 0x01, 0xc1, 0xff, 0x26, 0x01, 0xaf})
	f.Add(true, []byte{0x46, 0x01, 0x10, 0xff, 0x02, 0x01, 0xd0})
	f.Fuzz(func(t *testing.T, h265 bool, data []byte) {
		l := &Ladder{h265: h265}
		// 0xff separates NAL units, so the fuzzer shapes access units directly.
		au := bytes.Split(data, []byte{0xff})
		for range 2 { // the second pass has the parameter sets of the first in force
			in := make([][]byte, len(au))
			for i, n := range au {
				in[i] = bytes.Clone(n)
			}
			key := l.scanParams(in)
			out := l.annexB(in, key)
			kept := 0
			hasParams := false
			for _, n := range in {
				if len(n) > 0 && !isAUD(n, h265) {
					kept++
				}
				hasParams = hasParams || len(n) > 0 && isParamSet(n, h265)
			}
			added := 0
			if key && !hasParams {
				for _, p := range l.params {
					if len(p) > 0 {
						added++
					}
				}
			}
			if len(out) != kept+added {
				t.Fatalf("%d NAL units out, want %d kept + %d parameter sets", len(out), kept, added)
			}
			snapshot := make([][]byte, len(out))
			for i, n := range out {
				if len(n) == 0 {
					t.Fatal("empty NAL unit out")
				}
				snapshot[i] = bytes.Clone(n)
			}
			for _, n := range in {
				for i := range n {
					n[i] ^= 0xff
				}
			}
			for i := range out {
				if !bytes.Equal(out[i], snapshot[i]) {
					t.Fatal("the output shares memory with the caller's access unit")
				}
			}
		}
	})
}
