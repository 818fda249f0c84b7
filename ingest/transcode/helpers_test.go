package transcode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"glasscast/media"
)

// slowFFmpeg is the real ffmpeg reading its input at rate times real time, through a wrapper
// script: this machine cannot be made reliably too slow for a real encode otherwise.
func slowFFmpeg(t testing.TB, rate float64) string {
	t.Helper()
	needFFmpeg(t)
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(t.TempDir(), "slow-ffmpeg")
	script := "#!/bin/sh\nexec " + real + " -readrate " + strconv.FormatFloat(rate, 'f', -1, 64) + " \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return slow
}

// slowLadder is a STANDARD ladder over seconds of 360p30 input, whose ffmpeg reads at rate
// times real time (slowFFmpeg) and may lag by maxLag.
func slowLadder(t *testing.T, rate, seconds float64, maxLag time.Duration) (*Ladder, input, *recSink) {
	t.Helper()
	slow := slowFFmpeg(t, rate)
	in := readTS(t, encode(t, seconds, "640x360", 30, 30))
	sink := newRecSink()
	l, err := New(testCtx, Config{ChannelType: TypeStandard, FFmpeg: slow, MaxLag: maxLag, Event: sink.event,
		Logger: testLogger(t)}, in.video, in.audio, sink)
	if err != nil {
		t.Fatal(err)
	}
	return l, in, sink
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (make deps installs it)", bin)
		}
	}
}

// encode writes seconds of the DESIGN.md test pattern (testsrc2 + a sine, H.264 without
// B-frames unless extra asks, AAC) to an MPEG-TS file.
func encode(t testing.TB, seconds float64, size string, rate, gop int, extra ...string) string {
	t.Helper()
	needFFmpeg(t)
	path := filepath.Join(t.TempDir(), "in.ts")
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d:duration=%g", size, rate, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%g", seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0"}
	args = append(args, extra...)
	args = append(args, "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return path
}

// unit is one access unit as an RTMP publisher would deliver it.
type unit struct {
	video    bool
	pts, dts time.Duration
	au       [][]byte
	data     []byte
}

type input struct {
	video, audio codecs.Codec
	units        []unit
}

// readTS reads an MPEG-TS file into access units with RTMP's millisecond timestamps, starting
// near zero, and the parameter sets moved out of band (into the codec) as RTMP carries them.
func readTS(t testing.TB, path string) input {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var in input
	var base int64 = -1
	rtmp := func(ts int64) time.Duration {
		if base < 0 {
			base = ts
		}
		return time.Duration(math.Round(float64(ts-base)/90)) * time.Millisecond
	}
	h264 := &codecs.H264{}
	for _, tr := range r.Tracks() {
		switch c := tr.Codec.(type) {
		case *tscodecs.H264:
			in.video = h264
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				var kept [][]byte
				for _, n := range au {
					switch n[0] & 0x1f {
					case 7:
						if h264.SPS == nil {
							h264.SPS = n
						}
					case 8:
						if h264.PPS == nil {
							h264.PPS = n
						}
					default:
						kept = append(kept, n)
					}
				}
				d := rtmp(dts)
				in.units = append(in.units, unit{video: true, pts: d + rtmp(pts) - rtmp(dts), dts: d, au: kept})
				return nil
			})
		case *tscodecs.H265:
			h265 := &codecs.H265{}
			in.video = h265
			r.OnDataH265(tr, func(pts, dts int64, au [][]byte) error {
				var kept [][]byte
				for _, n := range au {
					switch n[0] >> 1 & 0x3f {
					case 32:
						h265.VPS = cmpOr(h265.VPS, n)
					case 33:
						h265.SPS = cmpOr(h265.SPS, n)
					case 34:
						h265.PPS = cmpOr(h265.PPS, n)
					case 35, 39, 40: // delimiters and SEI
					default:
						kept = append(kept, n)
					}
				}
				d := rtmp(dts)
				in.units = append(in.units, unit{video: true, pts: d + rtmp(pts) - rtmp(dts), dts: d, au: kept})
				return nil
			})
		case *tscodecs.MPEG4Audio:
			in.audio = &codecs.MPEG4Audio{Config: c.Config}
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				for i, au := range aus {
					ts := pts + int64(i)*1024*90000/int64(c.Config.SampleRate)
					in.units = append(in.units, unit{pts: rtmp(ts), dts: rtmp(ts), data: au})
				}
				return nil
			})
		}
	}
	for r.Read() == nil {
	}
	return in
}

func cmpOr(cur, n []byte) []byte {
	if cur != nil {
		return cur
	}
	return n
}

// play writes units to l at speed times real time, calling at(i) before unit i.
func play(t testing.TB, l *Ladder, units []unit, speed float64, at func(i int)) {
	t.Helper()
	start := time.Now()
	first := units[0].dts
	for i, u := range units {
		if d := time.Duration(float64(u.dts-first)/speed) - time.Since(start); d > 0 {
			time.Sleep(d)
		}
		if at != nil {
			at(i)
		}
		var err error
		switch {
		case u.video && l.h265:
			err = l.WriteH265(testCtx, u.pts, u.dts, u.au)
		case u.video:
			err = l.WriteH264(testCtx, u.pts, u.dts, u.au)
		default:
			err = l.WriteMPEG4Audio(testCtx, u.pts, u.data)
		}
		if err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
}

// recSink records what a ladder publishes, as the origin would receive it.
type recSink struct {
	mu     sync.Mutex
	inits  map[string][]recInit
	parts  map[string][]recPart
	events []string
}

type recInit struct {
	r       media.Rendition
	b       []byte
	atParts int
}

type recPart struct {
	p   media.Part
	gen int // generation of the newest init when it arrived
	at  time.Time
}

func newRecSink() *recSink {
	return &recSink{inits: map[string][]recInit{}, parts: map[string][]recPart{}}
}

// testCtx is the context the tests write under.
var testCtx = context.Background()

func (s *recSink) Init(_ context.Context, r media.Rendition, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if is := s.inits[r.Name]; len(is) > 0 && r.Generation < is[len(is)-1].r.Generation {
		return fmt.Errorf("rendition %s: generation %d after %d", r.Name, r.Generation, is[len(is)-1].r.Generation)
	}
	s.inits[r.Name] = append(s.inits[r.Name], recInit{r, b, len(s.parts[r.Name])})
	return nil
}

func (s *recSink) Part(_ context.Context, name string, p media.Part) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	is := s.inits[name]
	if len(is) == 0 {
		return fmt.Errorf("rendition %s: part before init", name)
	}
	s.parts[name] = append(s.parts[name], recPart{p, is[len(is)-1].r.Generation, time.Now()})
	return nil
}

func (s *recSink) event(name, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, name+"/"+code)
}

func (s *recSink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.inits {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// segments groups a rendition's parts by MSN, failing on any gap or reordering the origin
// would refuse.
func (s *recSink) segments(t *testing.T, name string) map[uint64][]recPart {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := map[uint64][]recPart{}
	parts := s.parts[name]
	for i, rp := range parts {
		p := rp.p
		if i > 0 {
			prev := parts[i-1].p
			switch {
			case p.MSN == prev.MSN && p.Index == prev.Index+1 && !prev.Last:
			case p.MSN == prev.MSN+1 && p.Index == 0:
			default:
				t.Fatalf("%s: part %d.%d after %d.%d (last %v)", name, p.MSN, p.Index, prev.MSN, prev.Index, prev.Last)
			}
		}
		segs[p.MSN] = append(segs[p.MSN], rp)
	}
	return segs
}

// file writes a rendition's parts of generation gen after that generation's init, as a player
// would append them, and returns the path.
func (s *recSink) file(t *testing.T, name string, gen int) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []byte
	for _, in := range s.inits[name] {
		if in.r.Generation == gen {
			b = append(b, in.b...)
			break
		}
	}
	if len(b) == 0 {
		t.Fatalf("%s: no init of generation %d", name, gen)
	}
	for _, rp := range s.parts[name] {
		if rp.gen == gen {
			b = append(b, rp.p.Data...)
		}
	}
	path := filepath.Join(t.TempDir(), name+".mp4")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type probed struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
}

// ffprobe decodes every frame of path, failing on any decoder complaint, and returns the
// video size and the frames decoded per stream type.
func ffprobe(t *testing.T, path string) (w, h int, frames map[string]int) {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,width,height,nb_read_frames", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffprobe %s complained: %s", path, stderr.String())
	}
	var res probed
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	frames = map[string]int{}
	for _, st := range res.Streams {
		n, _ := strconv.Atoi(st.NbReadFrames)
		frames[st.CodecType] = n
		if st.CodecType == "video" {
			w, h = st.Width, st.Height
		}
	}
	return w, h, frames
}
