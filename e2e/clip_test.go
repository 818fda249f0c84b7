package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// accessUnit is one frame of a clip, in decode order.
type accessUnit struct {
	video    bool
	pts, dts time.Duration
	au       [][]byte
}

// clip is media encoded by ffmpeg, ready to be published frame by frame with gortmplib: the
// way to send what Debian's ffmpeg 5.1 cannot (Enhanced RTMP, AMF data messages).
type clip struct {
	aus  []accessUnit
	h265 bool
	aac  *tscodecs.MPEG4Audio
}

// encodeClip encodes seconds of 640x360@30 test pattern and a sine with ffmpeg's video
// encoder options video (libx264 or libx265 ones) and reads the frames back.
func encodeClip(t *testing.T, seconds int, video ...string) clip {
	t.Helper()
	file := filepath.Join(t.TempDir(), "clip.ts")
	args := []string{"-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds)}
	args = append(args, video...)
	args = append(args, "-c:a", "aac", "-f", "mpegts", file)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
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
	var c clip
	tick := func(v int64) time.Duration { return time.Duration(v) * time.Second / 90000 }
	onVideo := func(pts, dts int64, au [][]byte) error {
		c.aus = append(c.aus, accessUnit{video: true, pts: tick(pts), dts: tick(dts), au: au})
		return nil
	}
	for _, tr := range r.Tracks() {
		switch cd := tr.Codec.(type) {
		case *tscodecs.H264:
			r.OnDataH264(tr, onVideo)
		case *tscodecs.H265:
			c.h265 = true
			r.OnDataH265(tr, onVideo)
		case *tscodecs.MPEG4Audio:
			c.aac = cd
			r.OnDataMPEG4Audio(tr, func(pts int64, frames [][]byte) error {
				for i, fr := range frames {
					p := tick(pts) + time.Duration(i)*1024*time.Second/time.Duration(cd.Config.SampleRate)
					c.aus = append(c.aus, accessUnit{pts: p, dts: p, au: [][]byte{fr}})
				}
				return nil
			})
		}
	}
	for r.Read() == nil {
	}
	if c.aac == nil || len(c.aus) == 0 {
		t.Fatal("the clip has no video and AAC")
	}
	return c
}

// publishClip publishes c over RTMP at real-time pace. before is called ahead of each frame
// with the media time reached and the connection, to send data messages in between.
func publishClip(t *testing.T, ctx context.Context, rtmpURL string, c clip, before func(elapsed time.Duration, conn *gortmplib.Client)) {
	t.Helper()
	u, _ := url.Parse(rtmpURL)
	cl := &gortmplib.Client{URL: u, Publish: true}
	if err := cl.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var vc rtmpcodecs.Codec = &rtmpcodecs.H264{}
	if c.h265 {
		vc = &rtmpcodecs.H265{}
	}
	vt := &gortmplib.Track{Codec: vc}
	at := &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: &c.aac.Config}}
	w := &gortmplib.Writer{Conn: cl, Tracks: []*gortmplib.Track{vt, at}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	start, base := time.Now(), c.aus[0].dts
	for _, a := range c.aus {
		time.Sleep(time.Until(start.Add(a.dts - base)))
		if before != nil {
			before(a.dts-base, cl)
		}
		var err error
		switch {
		case !a.video:
			err = w.WriteMPEG4Audio(at, a.pts-base, a.au[0])
		case c.h265:
			err = w.WriteH265(vt, a.pts-base, a.dts-base, a.au)
		default:
			err = w.WriteH264(vt, a.pts-base, a.dts-base, a.au)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
