package rtmp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"glasscast/bus"
	"glasscast/ingest"
	"glasscast/media"
	"glasscast/store"
)

// partSink is an origin that passes on the duration of each part it receives.
type partSink struct{ parts chan time.Duration }

func (s partSink) Open(context.Context, media.Stream) (media.Broadcast, error) { return s, nil }
func (s partSink) Init(context.Context, media.Rendition, []byte) error         { return nil }
func (s partSink) Close(context.Context) error                                 { return nil }
func (s partSink) Part(ctx context.Context, _ string, p media.Part) error {
	select {
	case s.parts <- p.Duration:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait returns once parts adding up to want have arrived, and fails the test if ctx ends first.
func (s partSink) wait(ctx context.Context, t *testing.T, want time.Duration) {
	t.Helper()
	var got time.Duration
	for got < want {
		select {
		case d := <-s.parts:
			got += d
		case <-ctx.Done():
			t.Fatalf("parts of %v reached the origin, want %v", got, want)
		}
	}
}

// testKey is the stream key of channel ch1, which startServer creates.
const testKey = "sk_us-east-1_testkey"

// startServer runs an RTMP ingest on a loopback port with one channel whose parts go to sink,
// and returns its address.
func startServer(t *testing.T, sink media.Sink) string {
	t.Helper()
	return startServerConfig(t, Config{}, sink)
}

// startServerConfig is startServer with cfg, whose Listen it sets.
func startServerConfig(t *testing.T, cfg Config, sink media.Sink) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "rtmp"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	ch := store.Channel{ID: "ch1", LatencyMode: "LOW", Type: "BASIC", InsecureIngest: true, StreamKeys: []string{"k1"}}
	if err := st.Channels.Create(ctx, ch.ID, ch); err != nil {
		t.Fatal(err)
	}
	if err := st.StreamKeys.Create(ctx, "k1", store.StreamKey{ID: "k1", ChannelID: ch.ID, Value: testKey}); err != nil {
		t.Fatal(err)
	}
	if err := st.StreamKeyValues.Create(ctx, st.StreamKeyDigest(testKey), "k1"); err != nil {
		t.Fatal(err)
	}
	in := ingest.New(ingest.Config{Transcode: ingest.TranscodeConfig{Disabled: true}}, st, b.Conn, sink, log)
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, in, log)
	addrs, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = in.Serve(ctx, s)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return addrs[0].String()
}

// TestIgnoredTracks: a publisher whose FLV carries a track the ingest does not take (MP3,
// ffmpeg's default FLV audio; G.711; LPCM; a second track of a kind) keeps publishing its
// supported tracks. gortmplib calls a track's callback unchecked, so a track left without one
// panicked on its first frame and took the process down.
func TestIgnoredTracks(t *testing.T) {
	silence := make([]byte, 320)
	mp3 := []byte{0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0}
	cases := []struct {
		name  string
		extra []*gortmplib.Track
		write func(w *gortmplib.Writer, tr *gortmplib.Track, pts time.Duration) error
	}{
		{"mp3", []*gortmplib.Track{{Codec: &rtmpcodecs.MPEG1Audio{}}},
			func(w *gortmplib.Writer, tr *gortmplib.Track, pts time.Duration) error {
				return w.WriteMPEG1Audio(tr, pts, mp3)
			}},
		{"g711", []*gortmplib.Track{{Codec: &rtmpcodecs.G711{MULaw: true, ChannelCount: 1}}},
			func(w *gortmplib.Writer, tr *gortmplib.Track, pts time.Duration) error {
				return w.WriteG711(tr, pts, silence)
			}},
		{"lpcm", []*gortmplib.Track{{Codec: &rtmpcodecs.LPCM{BitDepth: 16, SampleRate: 44100, ChannelCount: 2}}},
			func(w *gortmplib.Writer, tr *gortmplib.Track, pts time.Duration) error {
				return w.WriteLPCM(tr, pts, silence)
			}},
		{"second audio track", []*gortmplib.Track{
			{Codec: &rtmpcodecs.MPEG4Audio{Config: &mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelCount: 2}}},
			{Codec: &rtmpcodecs.MPEG1Audio{}},
		}, func(w *gortmplib.Writer, tr *gortmplib.Track, pts time.Duration) error {
			if _, ok := tr.Codec.(*rtmpcodecs.MPEG1Audio); ok {
				return w.WriteMPEG1Audio(tr, pts, mp3)
			}
			return w.WriteMPEG4Audio(tr, pts, []byte{0x21, 0x10})
		}},
		{"second video track", []*gortmplib.Track{{Codec: &rtmpcodecs.H264{SPS: sps, PPS: pps}}},
			func(w *gortmplib.Writer, tr *gortmplib.Track, pts time.Duration) error {
				return w.WriteH264(tr, pts, pts, [][]byte{{0x65, 0x88, 0x84, 0x00, 0x33}})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := partSink{parts: make(chan time.Duration)}
			addr := startServer(t, sink)
			u, err := url.Parse("rtmp://" + addr + "/app/" + testKey)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := &gortmplib.Client{URL: u, Publish: true}
			if err := c.Initialize(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			video := &gortmplib.Track{Codec: &rtmpcodecs.H264{SPS: sps, PPS: pps}}
			w := &gortmplib.Writer{Conn: c, Tracks: append([]*gortmplib.Track{video}, tc.extra...)}
			if err := w.Initialize(); err != nil {
				t.Fatal(err)
			}
			// 3 s of 30 fps video, a key frame a second, each frame followed by the other tracks.
			for i := range 90 {
				pts := time.Duration(i) * time.Second / 30
				nalu := []byte{0x41, 0x9a, byte(i)}
				if i%30 == 0 {
					nalu = []byte{0x65, 0x88, 0x84, byte(i)}
				}
				if err := w.WriteH264(video, pts, pts, [][]byte{nalu}); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				for _, tr := range tc.extra {
					if err := tc.write(w, tr, pts); err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
				}
			}
			// Parts covering 2 s of the 3 s sent show the reader went on past the other
			// tracks' frames instead of ending the publish at the first.
			sink.wait(ctx, t, 2*time.Second)
		})
	}
}

// TestFFmpegMP3: ffmpeg's FLV output with its default audio codec, MP3, plays as video only.
func TestFFmpegMP3(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed")
	}
	sink := partSink{parts: make(chan time.Duration)}
	addr := startServer(t, sink)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=30", "-f", "lavfi", "-i", "sine", "-t", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "libmp3lame",
		"-f", "flv", "rtmp://"+addr+"/app/"+testKey)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ffmpeg: %s", stderr.String())
		}
	}()
	sink.wait(ctx, t, 2*time.Second)
}
