package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// TestH265PassThrough publishes H.265 over Enhanced RTMP (with gortmplib: Debian's ffmpeg 5.1
// predates Enhanced RTMP output) to a BASIC channel; the stream passes through untouched:
// hvc1 in the multivariant playlist, and ffprobe decodes H.265 from the segments.
func TestH265PassThrough(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})

	file := filepath.Join(t.TempDir(), "hevc.ts")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "6", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:min-keyint=30:bframes=0:log-level=error",
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
		switch cd := tr.Codec.(type) {
		case *tscodecs.H265:
			r.OnDataH265(tr, func(pts, dts int64, au [][]byte) error {
				aus = append(aus, accessUnit{video: true, pts: tick(pts), dts: tick(dts), au: au})
				return nil
			})
		case *tscodecs.MPEG4Audio:
			aac = cd
			r.OnDataMPEG4Audio(tr, func(pts int64, frames [][]byte) error {
				for i, fr := range frames {
					p := tick(pts) + time.Duration(i)*1024*time.Second/time.Duration(cd.Config.SampleRate)
					aus = append(aus, accessUnit{pts: p, dts: p, au: [][]byte{fr}})
				}
				return nil
			})
		}
	}
	for r.Read() == nil {
	}
	if aac == nil || len(aus) == 0 {
		t.Fatal("no H.265 and AAC in the clip")
	}

	u, _ := url.Parse(n.rtmpURL(key))
	cl := &gortmplib.Client{URL: u, Publish: true}
	if err := cl.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	vt := &gortmplib.Track{Codec: &rtmpcodecs.H265{}}
	at := &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: &aac.Config}}
	w := &gortmplib.Writer{Conn: cl, Tracks: []*gortmplib.Track{vt, at}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	start, base := time.Now(), aus[0].dts
	for _, a := range aus {
		time.Sleep(time.Until(start.Add(a.dts - base)))
		if a.video {
			err = w.WriteH265(vt, a.pts-base, a.dts-base, a.au)
		} else {
			err = w.WriteMPEG4Audio(at, a.pts-base, a.au[0])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitPlayable(t, *ch.PlaybackUrl)
	_, mv := get(t, *ch.PlaybackUrl)
	if !strings.Contains(mv, `CODECS="hvc1.`) {
		t.Fatalf("multivariant does not announce H.265:\n%s", mv)
	}
	cl.Close()
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	probe, err := exec.CommandContext(context.Background(), "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", mediaPlaylistURL(*ch.PlaybackUrl)).CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(probe)), "hevc,640,360") {
		t.Fatalf("ffprobe of the ended playlist: %v %s", err, probe)
	}
}
