package whip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// TestPreferH264: an offer's video sections list H.264 first, the rest in their order.
func TestPreferH264(t *testing.T) {
	offer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 102 103\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n" +
		"a=rtpmap:98 VP9/90000\r\na=rtpmap:102 H264/90000\r\na=rtpmap:103 h264/90000\r\n"
	got := preferH264(offer)
	if !strings.Contains(got, "m=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97 98\r\n") || !strings.Contains(got, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n") {
		t.Fatalf("reordered offer:\n%s", got)
	}
	if preferH264("garbage") != "garbage" {
		t.Fatal("an unparsable offer must pass unchanged")
	}
}

// TestWHIPVPX: a pion WHIP client publishes VP8 (or VP9) at 25 fps; the session gets H.264
// from ffmpeg: an IDR first, an IDR at least every key frame interval, 40 ms steps across
// the publisher's step up in resolution, pictures of the new size after it; DELETE detaches
// it with ErrDeleted, and the transcoding ffmpeg is gone.
func TestWHIPVPX(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed")
	}
	for _, c := range []struct{ mime, encoder string }{{webrtc.MimeTypeVP8, "libvpx"}, {webrtc.MimeTypeVP9, "libvpx-vp9"}} {
		t.Run(c.mime[6:], func(t *testing.T) {
			// A key frame every 2 s (the transcoder makes its own every second), and the picture
			// grows after 1.6 s, as a browser ramping up does.
			dir := t.TempDir()
			var files []string
			for i, size := range []string{"320x240", "640x480"} {
				f := filepath.Join(dir, strconv.Itoa(i)+".ivf")
				out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=25", "-t", "2.4",
					"-c:v", c.encoder, "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k", "-g", "50", "-f", "ivf", f).CombinedOutput()
				if err != nil {
					t.Fatalf("ffmpeg: %v %s", err, out)
				}
				files = append(files, f)
			}
			ing := &fakeIngest{key: "sk_good"}
			s, ctx := startServer(t, Config{UDPListen: "127.0.0.1:0", Timeout: 3 * time.Second, KeyFrameInterval: time.Second},
				ing, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			hs := httptest.NewServer(s)
			defer hs.Close()

			loc := publishIVF(t, hs.URL+"/whip", c.mime, ctx, 40*time.Millisecond, files[0], files[1])
			time.Sleep(3500 * time.Millisecond)
			req, _ := http.NewRequest(http.MethodDelete, hs.URL+loc, nil)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("DELETE: %v %v", resp, err)
			}
			sess := ing.sessions[0]
			deadline := time.Now().Add(5 * time.Second)
			for !sess.detached() {
				if time.Now().After(deadline) {
					t.Fatal("DELETE did not detach the session")
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The transcoder ended with the session (the audio one has no IVF input).
			for deadline := time.Now().Add(3 * time.Second); ivfChildren() > 0; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the transcoding ffmpeg outlived its session")
				}
			}
			sess.mu.Lock()
			defer sess.mu.Unlock()
			if !errors.Is(sess.detachErr, ErrDeleted) {
				t.Errorf("detached with %v, want ErrDeleted", sess.detachErr)
			}
			if _, ok := sess.video.(*mp4codecs.H264); !ok {
				t.Fatalf("video codec %T, want H.264", sess.video)
			}
			if want := strings.ToLower(c.mime[6:]); sess.sentVideo != want {
				t.Errorf("Start was told the publisher sends %q, want %q", sess.sentVideo, want)
			}
			if len(sess.videoDTS) < 40 || !sess.keys[0] {
				t.Fatalf("%d H.264 frames in ~3.5 s, first an IDR: %v", len(sess.videoDTS), len(sess.keys) > 0 && sess.keys[0])
			}
			lastKey := sess.videoDTS[0]
			for i := 1; i < len(sess.videoDTS); i++ {
				if d := sess.videoDTS[i] - sess.videoDTS[i-1]; d != 40*time.Millisecond {
					t.Fatalf("video step %d: %v, want 40ms", i, d)
				}
				if sess.keys[i] {
					lastKey = sess.videoDTS[i]
				} else if sess.videoDTS[i]-lastKey > 1100*time.Millisecond {
					t.Fatalf("no IDR for %v at frame %d", sess.videoDTS[i]-lastKey, i)
				}
			}
			if w, h := sess.size(); w != 640 || h != 480 {
				t.Errorf("H.264 pictures %dx%d at the end, want 640x480", w, h)
			}
			t.Logf("%d H.264 frames", len(sess.videoDTS))
		})
	}
}

// publishIVF offers one video track of codec mime and sends the IVF files' frames, one file
// after the other, every step once connected (a static track answers no key frame request); it returns the
// session's Location.
func publishIVF(t *testing.T, endpoint, mime string, ctx context.Context, step time.Duration, files ...string) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	connected := onConnected(pc)
	vt, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}, "video", "glass")
	if _, err := pc.AddTransceiverFromTrack(vt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	code, loc := signalWHIP(t, pc, endpoint, "sk_good")
	if code != http.StatusCreated {
		t.Fatalf("offer: status %d", code)
	}
	var frames [][]byte
	for i, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := ivfreader.NewWith(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		// All of the first file but its last 0.8 s: the step happens before its second key frame.
		var fs [][]byte
		for {
			frame, _, err := r.ParseNextFrame()
			if err != nil {
				break
			}
			fs = append(fs, frame)
		}
		if i == 0 && len(files) > 1 {
			fs = fs[:len(fs)-20]
		}
		frames = append(frames, fs...)
	}
	go func() {
		select {
		case <-connected:
		case <-ctx.Done():
			return
		}
		tick := time.NewTicker(step)
		defer tick.Stop()
		for _, frame := range frames {
			if ctx.Err() != nil {
				return
			}
			_ = vt.WriteSample(media.Sample{Data: frame, Duration: step})
			<-tick.C
		}
	}()
	return loc
}

// size is the picture size of the last SPS the session got.
func (s *fakeSession) size() (int, int) {
	for _, nalu := range s.lastSPS {
		var sps h264.SPS
		if sps.Unmarshal(nalu) == nil {
			return sps.Width(), sps.Height()
		}
	}
	return 0, 0
}

// TestTranscodeFigures measures the CPU of the ffmpeg that transcodes one WHIP publisher's
// 1280x720, 30 fps VP8 or VP9 (ffmpeg's testsrc2 at 2.5 Mb/s, sent by a pion client) to
// H.264, from /proc, over 20 s, three rounds each. A measurement, run on demand:
//
//	GLASSCAST_FIGURES=1 go test -count=1 -run TestTranscodeFigures -v ./ingest/whip/
func TestTranscodeFigures(t *testing.T) {
	if os.Getenv("GLASSCAST_FIGURES") == "" {
		t.Skip("a measurement: set GLASSCAST_FIGURES=1 to run it")
	}
	for _, c := range []struct{ mime, encoder string }{{webrtc.MimeTypeVP8, "libvpx"}, {webrtc.MimeTypeVP9, "libvpx-vp9"}} {
		ivf := filepath.Join(t.TempDir(), "v.ivf")
		out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-t", "26",
			"-c:v", c.encoder, "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2500k", "-g", "60", "-f", "ivf", ivf).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v %s", err, out)
		}
		for round := 1; round <= 3; round++ {
			func() {
				ing := &fakeIngest{key: "sk_good"}
				// Each round's server stops with its round, so startServer (until the test ends) is not used.
				s, err := New(Config{UDPListen: "127.0.0.1:0", Timeout: 3 * time.Second}, ing, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				served := make(chan struct{})
				go func() { _ = s.Serve(ctx); close(served) }()
				defer func() { cancel(); <-served }()
				hs := httptest.NewServer(s)
				defer hs.Close()
				publishIVF(t, hs.URL+"/whip", c.mime, ctx, time.Second/30, ivf)
				time.Sleep(3 * time.Second)
				pid := childFFmpeg(t)
				cpu0, wall0 := procCPU(t, pid), time.Now()
				time.Sleep(20 * time.Second)
				share := (procCPU(t, pid) - cpu0).Seconds() / time.Since(wall0).Seconds()
				ing.sessions[0].mu.Lock()
				frames := len(ing.sessions[0].videoDTS)
				ing.sessions[0].mu.Unlock()
				t.Logf("%s round %d: ffmpeg %.0f %% of a core (%d H.264 frames so far)", c.mime, round, 100*share, frames)
			}()
		}
	}
}

// childFFmpeg is this process's ffmpeg child that reads IVF.
func childFFmpeg(t *testing.T) int {
	t.Helper()
	pids := ivfChildPIDs()
	if len(pids) == 0 {
		t.Fatal("no transcoding ffmpeg")
	}
	return pids[0]
}

func ivfChildren() int { return len(ivfChildPIDs()) }

// ivfChildPIDs are this process's children that read IVF (VP8/VP9 transcoder runs).
func ivfChildPIDs() []int {
	parent := strconv.Itoa(os.Getpid())
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile("/proc/" + d.Name() + "/stat")
		cmdline, err2 := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err1 != nil || err2 != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if len(f) > 1 && f[1] == parent && strings.Contains(string(cmdline), "ivf\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procCPU is a process's CPU time (utime + stime).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / 100 // USER_HZ
}
