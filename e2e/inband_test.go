package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"glasscast/metadata"
)

type accessUnit struct {
	video    bool
	pts, dts time.Duration
	au       [][]byte
}

// encodeClip makes a few seconds of H.264 + AAC with ffmpeg and returns its access units in
// decode order, with the AAC configuration.
func encodeClip(t *testing.T, seconds int) ([]accessUnit, *tscodecs.MPEG4Audio) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "clip.ts")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "mpegts", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var aus []accessUnit
	var aac *tscodecs.MPEG4Audio
	tick := func(v int64) time.Duration { return time.Duration(v) * time.Second / 90000 }
	for _, tr := range r.Tracks() {
		switch c := tr.Codec.(type) {
		case *tscodecs.H264:
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				aus = append(aus, accessUnit{video: true, pts: tick(pts), dts: tick(dts), au: au})
				return nil
			})
		case *tscodecs.MPEG4Audio:
			aac = c
			r.OnDataMPEG4Audio(tr, func(pts int64, frames [][]byte) error {
				for i, fr := range frames {
					p := tick(pts) + time.Duration(i)*1024*time.Second/time.Duration(c.Config.SampleRate)
					aus = append(aus, accessUnit{pts: p, dts: p, au: [][]byte{fr}})
				}
				return nil
			})
		}
	}
	for r.Read() == nil {
	}
	return aus, aac
}

// TestInBandMetadata: onTextData and onCuePoint data messages a broadcaster sends inside the
// RTMP stream come out as emsg cues, like PutMetadata's.
func TestInBandMetadata(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	aus, aac := encodeClip(t, 8)

	u, _ := url.Parse(n.rtmpURL(key))
	cl := &gortmplib.Client{URL: u, Publish: true}
	if err := cl.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	vt := &gortmplib.Track{Codec: &rtmpcodecs.H264{}}
	at := &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: &aac.Config}}
	w := &gortmplib.Writer{Conn: cl, Tracks: []*gortmplib.Track{vt, at}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	data := func(name string, obj amf0.Object) {
		t.Helper()
		if err := cl.Write(&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{name, obj}}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	base := aus[0].dts
	sent := map[time.Duration]bool{}
	for _, a := range aus {
		time.Sleep(time.Until(start.Add(a.dts - base)))
		for _, at := range []time.Duration{3 * time.Second, 4 * time.Second, 5 * time.Second} {
			if a.dts-base >= at && !sent[at] {
				sent[at] = true
				data("onTextData", amf0.Object{{Key: "text", Value: "inband-" + strconv.Itoa(int(at/time.Second))}, {Key: "language", Value: "eng"}})
			}
		}
		if a.dts-base >= 6*time.Second && !sent[6*time.Second] {
			sent[6*time.Second] = true
			data("onCuePoint", amf0.Object{{Key: "name", Value: "goal"}, {Key: "type", Value: "event"}, {Key: "time", Value: 6.0}})
		}
		var err error
		if a.video {
			err = w.WriteH264(vt, a.pts-base, a.dts-base, a.au)
		} else {
			err = w.WriteMPEG4Audio(at, a.pts-base, a.au[0])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	cl.Close()
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)

	// The ended playlist lists every segment; their emsg boxes carry the cues.
	texts := map[string]bool{}
	_, body := get(t, mediaPlaylistURL(*ch.PlaybackUrl))
	base2 := strings.TrimSuffix(mediaPlaylistURL(*ch.PlaybackUrl), "index.m3u8")
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "seg") {
			continue
		}
		resp, err := httpGet(context.Background(), base2+line)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := metadata.ParseEmsg(resp)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			texts[m.Text] = true
		}
	}
	for _, want := range []string{"inband-3", "inband-4", "inband-5", `{"name":"goal","time":6,"type":"event"}`} {
		if !texts[want] {
			t.Fatalf("in-band metadata %q not found in the stream; found %v", want, texts)
		}
	}
}
