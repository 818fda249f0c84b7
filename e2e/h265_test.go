package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
)

// TestH265PassThrough publishes H.265 over Enhanced RTMP (with gortmplib: Debian's ffmpeg 5.1
// predates Enhanced RTMP output) to a BASIC channel; the stream passes through untouched:
// hvc1 in the multivariant playlist, and ffprobe decodes H.265 from the segments.
func TestH265PassThrough(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	clip := encodeClip(t, 6, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:min-keyint=30:bframes=0:log-level=error")
	var mv string
	publishClip(t, ctx, n.rtmpURL(key), clip, func(elapsed time.Duration, _ *gortmplib.Client) {
		if elapsed >= 4*time.Second && mv == "" {
			_, mv = get(t, *ch.PlaybackUrl)
		}
	})
	if !strings.Contains(mv, `CODECS="hvc1.`) {
		t.Fatalf("multivariant does not announce H.265:\n%s", mv)
	}
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	probe, err := exec.CommandContext(context.Background(), "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", mediaPlaylistURL(*ch.PlaybackUrl)).CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(probe)), "hevc,640,360") {
		t.Fatalf("ffprobe of the ended playlist: %v %s", err, probe)
	}
}
