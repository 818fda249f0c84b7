package thumbnail

import (
	"bytes"
	"image/jpeg"
	"os/exec"
	"testing"

	"glasscast/archive/remux"
)

// TestJPEG decodes a real x264 key frame at source size and scaled to a resolution class.
func TestJPEG(t *testing.T) {
	m := &Maker{}
	if m.Available() != nil {
		t.Skip("ffmpeg not installed (make deps installs it)")
	}
	kf, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-frames:v", "1", "-c:v", "libx264", "-f", "h264", "pipe:1").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ height, w, h int }{{0, 1280, 720}, {480, 854, 480}} {
		b, w, h, err := m.JPEG(t.Context(), remux.Keyframe{AnnexB: kf}, c.height)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil || w != c.w || h != c.h || img.Bounds().Dx() != c.w || img.Bounds().Dy() != c.h {
			t.Fatalf("height %d: %dx%d (%v)", c.height, w, h, err)
		}
	}
	if _, _, _, err := m.JPEG(t.Context(), remux.Keyframe{AnnexB: []byte("not video")}, 0); err == nil {
		t.Fatal("garbage decoded into a JPEG")
	}
}
