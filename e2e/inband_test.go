package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"glasscast/metadata"
)

// TestInBandMetadata: onTextData and onCuePoint data messages a broadcaster sends inside the
// RTMP stream come out as emsg cues, like PutMetadata's.
func TestInBandMetadata(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	clip := encodeClip(t, 8, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p")

	data := func(conn *gortmplib.Client, name string, obj amf0.Object) {
		if err := conn.Write(&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{name, obj}}); err != nil {
			t.Error(err)
		}
	}
	sent := map[time.Duration]bool{}
	publishClip(t, ctx, n.rtmpURL(key), clip, func(elapsed time.Duration, conn *gortmplib.Client) {
		for _, at := range []time.Duration{3 * time.Second, 4 * time.Second, 5 * time.Second} {
			if elapsed >= at && !sent[at] {
				sent[at] = true
				data(conn, "onTextData", amf0.Object{{Key: "text", Value: "inband-" + strconv.Itoa(int(at/time.Second))}, {Key: "language", Value: "eng"}})
			}
		}
		if elapsed >= 6*time.Second && !sent[6*time.Second] {
			sent[6*time.Second] = true
			data(conn, "onCuePoint", amf0.Object{{Key: "name", Value: "goal"}, {Key: "type", Value: "event"}, {Key: "time", Value: 6.0}})
		}
	})
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)

	// The ended playlist lists every segment; their emsg boxes carry the cues.
	texts := endedCueTexts(t, *ch.PlaybackUrl)
	for _, want := range []string{"inband-3", "inband-4", "inband-5", `{"name":"goal","time":6,"type":"event"}`} {
		if !texts[want] {
			t.Fatalf("in-band metadata %q not found in the stream; found %v", want, texts)
		}
	}
}

// endedCueTexts returns the texts of the emsg cues in every segment that the ended playlist of
// a broadcast lists.
func endedCueTexts(t *testing.T, playbackURL string) map[string]bool {
	t.Helper()
	texts := map[string]bool{}
	_, body := get(t, mediaPlaylistURL(playbackURL))
	base := strings.TrimSuffix(mediaPlaylistURL(playbackURL), "index.m3u8")
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "seg") {
			continue
		}
		b, err := httpGet(context.Background(), base+line)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := metadata.ParseEmsg(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			texts[m.Text] = true
		}
	}
	return texts
}
