package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
)

// TestPartsOutWithTheirLastFrame publishes an x264 clip (30 fps, a key frame every second, so
// 1 s segments of five 6-frame parts) frame by frame over RTMP to a BASIC channel, and holds
// the publisher back three times. Held before a frame that starts a part, the part that frame
// would have closed is already in the playlist: the packager sent it with its last frame.
// Held before the key frame due, the parts before the segment's last are out, but not that
// one: a key frame may come a frame late, and the preload hint must name the part that comes
// next. Held right after the key frame, the last part is out and its segment complete. Without
// early parts the first two parts do not show up until the held frame comes.
func TestPartsOutWithTheirLastFrame(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	clip := encodeClip(t, 5, "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-x264-params", "scenecut=0", "-pix_fmt", "yuv420p")
	// In decode order across both tracks, so that holding before one frame holds nothing older.
	slices.SortStableFunc(clip.aus, func(a, b accessUnit) int { return int(a.dts - b.dts) })
	base := clip.aus[0].dts
	var video []time.Duration // each video frame's time into the publish
	for _, a := range clip.aus {
		if a.video {
			video = append(video, a.dts-base)
		}
	}
	holds := []struct {
		frame    int  // held back
		part     int  // the newest part of segment 3 that must be out
		complete bool // and whether segment 3 must be complete
	}{{102, 1, false}, {120, 3, false}, {121, 4, true}}
	media := mediaPlaylistURL(*ch.PlaybackUrl)
	seq := regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	var got []string
	publishClip(t, ctx, n.rtmpURL(key), clip, func(elapsed time.Duration, _ *gortmplib.Client) {
		if len(holds) == 0 || elapsed < video[holds[0].frame] {
			return
		}
		h := holds[0]
		holds = holds[1:]
		var pl string
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			_, pl = get(t, media)
			m := seq.FindStringSubmatch(pl)
			if m == nil {
				continue
			}
			msn, _ := strconv.ParseUint(m[1], 10, 64)
			msn += 3 // the window still starts at the first segment
			// The newest part listed, not only named by the preload hint.
			newest := lastPart(pl) == int64(msn)*1000+int64(h.part)
			complete := strings.Contains(pl, fmt.Sprintf("\nseg%d.m4s\n", msn))
			if newest && complete == h.complete {
				got = append(got, fmt.Sprintf("frame %d held: part %d.%d out, segment complete %v", h.frame, msn, h.part, complete))
				return
			}
		}
		t.Errorf("frame %d held for 3 s: part %d of segment 3 (complete: %v) not the newest in the playlist:\n%s", h.frame, h.part, h.complete, pl)
	})
	if len(holds) > 0 || len(got) != 3 {
		t.Fatalf("held %d of 3 frames: %v", 3-len(holds), got)
	}
	t.Log(got)
}
