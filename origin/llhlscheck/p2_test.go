package llhlscheck

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// p2Stream serves one low-latency rendition whose second part is short (0.16 s of a 0.204 s
// PART-TARGET); the frame after it lasts next. With hinted, that frame's part is only hinted.
func p2Stream(t *testing.T, next time.Duration, hinted bool) string {
	t.Helper()
	sps, _ := hex.DecodeString("674d401eda0280bfe5c044000003000400000300f03c58ba80")
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &codecs.H264{SPS: sps, PPS: []byte{0x68, 0xef, 0x0f, 0xc8}}}}}
	var ib seekablebuffer.Buffer
	if err := init.Marshal(&ib); err != nil {
		t.Fatal(err)
	}
	// Each part holds frames of 50 ms but the first, which lasts first.
	part := func(seq uint32, base uint64, first time.Duration, frames int) []byte {
		tr := &fmp4.PartTrack{ID: 1, BaseTime: base}
		for i := range frames {
			d := uint32(4500)
			if i == 0 {
				d = uint32(first * 90000 / time.Second)
			}
			tr.Samples = append(tr.Samples, &fmp4.Sample{Duration: d, IsNonSyncSample: i > 0 || seq > 1, Payload: []byte{0, 0, 0, 1, 0x41}})
		}
		var b seekablebuffer.Buffer
		if err := (fmp4.Parts{{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{tr}}}).Marshal(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	files := map[string][]byte{
		"/init.mp4":    ib.Bytes(),
		"/part0.0.m4s": part(1, 0, 50*time.Millisecond, 4),
		"/part0.1.m4s": part(2, 18000, 60*time.Millisecond, 3),
		"/part0.2.m4s": part(3, 18000+14400, next, 4),
	}
	partLines := `#EXT-X-PART:DURATION=0.2,URI="part0.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.16,URI="part0.1.m4s"
`
	if !hinted {
		partLines += fmt.Sprintf("#EXT-X-PART:DURATION=%.3f,URI=\"part0.2.m4s\"\n", (next + 150*time.Millisecond).Seconds())
		partLines += "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part0.3.m4s\"\n"
	} else {
		partLines += "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part0.2.m4s\"\n"
	}
	files["/v.m3u8"] = []byte(`#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.612
#EXT-X-PART-INF:PART-TARGET=0.204
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
` + partLines)
	files["/main.m3u8"] = []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS=\"avc1.4d401e\"\nv.m3u8\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/main.m3u8"
}

// TestP2VariableFrameRate: a short part fails P2; for a variable-rate source it passes only
// when the frame after it, read from the next part or the hinted one, would not have fit.
func TestP2VariableFrameRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p2, _ := Lookup("P2")
	for _, c := range []struct {
		name   string
		next   time.Duration
		hinted bool
		vfr    bool
		want   string // in the error; "" passes
	}{
		{"constant rate", 50 * time.Millisecond, false, false, "under 85 %"},
		{"forced", 50 * time.Millisecond, false, true, ""},
		{"forced, next part hinted", 50 * time.Millisecond, true, true, ""},
		{"a frame that fits", 40 * time.Millisecond, false, true, "would fit"},
		{"a hinted frame that fits", 40 * time.Millisecond, true, true, "would fit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := &Target{URL: p2Stream(t, c.next, c.hinted), VariableFrameRate: c.vfr}
			err := p2.Run(ctx, target)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("P2: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("P2: %v, want an error with %q", err, c.want)
			}
		})
	}
}
