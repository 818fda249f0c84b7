package remux

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/asticode/go-astits"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"glasscast/ingest/packager"
	"glasscast/media"
	"glasscast/metadata"
)

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (make deps installs it)", bin)
		}
	}
}

// collector is a packager Output that groups parts into the origin's segments.
type collector struct {
	init  []byte
	segs  []Segment
	cur   []byte
	start time.Time
}

func (c *collector) Init(_ context.Context, r media.Rendition, b []byte) error {
	c.init = b
	return nil
}

func (c *collector) Part(_ context.Context, _ string, p media.Part) error {
	if p.Index == 0 {
		c.start = p.ProgramDateTime
	}
	c.cur = append(c.cur, p.Data...)
	if p.Last {
		c.segs = append(c.segs, Segment{Data: c.cur, PDT: c.start})
		c.cur = nil
	}
	return nil
}

// cmafStream encodes seconds of the DESIGN.md test pattern with ffmpeg and cuts it into CMAF
// with Glasscast's own packager: the exact input the archive reads from the origin. A cue is
// added at cueAt.
func cmafStream(t testing.TB, seconds float64, cueAt time.Duration, cue string) *collector {
	return cmafStreamSized(t, "640x360", seconds, cueAt, cue)
}

// cmafStreamSized is cmafStream at a picture size.
func cmafStreamSized(t testing.TB, size string, seconds float64, cueAt time.Duration, cue string) *collector {
	t.Helper()
	needFFmpeg(t)
	path := filepath.Join(t.TempDir(), "in.ts")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=30:duration=%g", size, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%g", seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "32k", "-f", "mpegts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	clock := time.Date(2026, 11, 5, 8, 7, 10, 0, time.UTC)
	var p *packager.Packager
	var video, audio *mpegts.Track
	for _, tr := range r.Tracks() {
		switch tr.Codec.(type) {
		case *tscodecs.H264:
			video = tr
		case *tscodecs.MPEG4Audio:
			audio = tr
		}
	}
	if video == nil || audio == nil {
		t.Fatal("ffmpeg output lacks H.264 or AAC")
	}
	ac := audio.Codec.(*tscodecs.MPEG4Audio)
	p, err = packager.New(packager.Config{Rendition: "source", Now: func() time.Time { return clock }},
		&codecs.H264{}, &codecs.MPEG4Audio{Config: ac.Config}, col)
	if err != nil {
		t.Fatal(err)
	}
	cueDone := false
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Second / 90000 }
	base := int64(-1)
	rel := func(v int64) time.Duration {
		if base < 0 {
			base = v
		}
		return (ms(v-base) + time.Millisecond/2).Truncate(time.Millisecond)
	}
	r.OnDataH264(video, func(pts, dts int64, au [][]byte) error {
		d := rel(dts)
		if !cueDone && d >= cueAt {
			p.AddCue(media.Cue{ID: "cue1", Time: clock.Add(d), Text: cue})
			cueDone = true
		}
		return p.WriteH264(testCtx, d+rel(pts)-rel(dts), d, au)
	})
	r.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) error {
		for i, au := range aus {
			if err := p.WriteMPEG4Audio(testCtx, rel(pts+int64(i)*1024*90000/48000), au); err != nil {
				return err
			}
		}
		return nil
	})
	for r.Read() == nil {
	}
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if len(col.segs) < 3 {
		t.Fatalf("packager made %d segments", len(col.segs))
	}
	return col
}

type probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Frames []struct {
		MediaType string `json:"media_type"`
		KeyFrame  int    `json:"key_frame"`
	} `json:"frames"`
}

func ffprobe(t *testing.T, path string, args ...string) probe {
	t.Helper()
	a := append([]string{"-v", "error", "-of", "json", "-show_streams", "-show_format"}, args...)
	out, err := exec.Command("ffprobe", append(a, path)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRemuxToTS remuxes real CMAF into TS files of about 4 s and checks them with ffprobe and
// a demuxer: codecs, duration, chunks that each start with PAT, PMT and a key frame, and the
// cue as an ID3 PES at the right time.
func TestRemuxToTS(t *testing.T) {
	col := cmafStream(t, 10, 5*time.Second, "hello from the archive")
	tracks, err := ParseInit(col.init)
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTimeline(0)
	tl.SetInit(tracks)
	dir := t.TempDir()
	var files []string
	var all []Chunk
	var f *File
	var out *os.File
	var kfs []Keyframe
	closeFile := func() {
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		out.Close()
		all = append(all, f.Chunks()...)
	}
	for i, s := range col.segs {
		if f == nil || f.Duration() >= 4*time.Second {
			if f != nil {
				closeFile()
			}
			name := filepath.Join(dir, strconv.Itoa(len(files))+".ts")
			files = append(files, name)
			if out, err = os.Create(name); err != nil {
				t.Fatal(err)
			}
			if f, err = Create(out, tl); err != nil {
				t.Fatal(err)
			}
		}
		_, k, err := f.WriteSegment(s, WriteOptions{WantKeyframe: func(time.Duration) bool { return i == 1 }})
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		kfs = append(kfs, k...)
	}
	closeFile()

	var total time.Duration
	for _, c := range all {
		total += c.Duration
	}
	if total < 9800*time.Millisecond || total > 10200*time.Millisecond || tl.Elapsed() != total {
		t.Fatalf("chunks add up to %v, timeline %v; want about 10 s", total, tl.Elapsed())
	}
	if len(kfs) != 1 || kfs[0].Time < 1900*time.Millisecond || kfs[0].Time > 2100*time.Millisecond || len(kfs[0].AnnexB) < 100 {
		t.Fatalf("key frames asked for: %+v", kfs)
	}
	var probed time.Duration
	for _, name := range files {
		p := ffprobe(t, name)
		types := map[string]string{}
		for _, s := range p.Streams {
			types[s.CodecType+"/"+s.CodecName] = s.CodecName
		}
		if types["video/h264"] == "" || types["audio/aac"] == "" || types["data/timed_id3"] == "" {
			t.Fatalf("%s: streams %+v", name, p.Streams)
		}
		d, _ := strconv.ParseFloat(p.Format.Duration, 64)
		probed += time.Duration(d * float64(time.Second))
	}
	if probed < 9500*time.Millisecond || probed > 10500*time.Millisecond {
		t.Fatalf("ffprobe sums durations to %v", probed)
	}

	// Every chunk, cut out alone, is playable from its first byte: tables, then a key frame.
	fi := 0
	for i, name := range files {
		data, _ := os.ReadFile(name)
		chunks := 0
		for ; fi < len(all) && (chunks == 0 || all[fi].Offset != 0); fi++ {
			c := all[fi]
			if c.Offset+c.Length > int64(len(data)) || c.Length%packetSize != 0 {
				t.Fatalf("file %d chunk %+v outside %d bytes", i, c, len(data))
			}
			if pid(data[c.Offset:]) != 0 {
				t.Fatalf("file %d chunk at %d starts with PID %d, not the PAT", i, c.Offset, pid(data[c.Offset:]))
			}
			part := filepath.Join(dir, fmt.Sprintf("chunk%d-%d.ts", i, chunks))
			if err := os.WriteFile(part, data[c.Offset:c.Offset+c.Length], 0o600); err != nil {
				t.Fatal(err)
			}
			p := ffprobe(t, part, "-show_frames", "-select_streams", "v")
			if len(p.Frames) < 50 || p.Frames[0].KeyFrame != 1 {
				t.Fatalf("chunk %s: %d frames, first key=%v", part, len(p.Frames), len(p.Frames) > 0 && p.Frames[0].KeyFrame == 1)
			}
			chunks++
		}
		if last := all[fi-1]; last.Offset+last.Length != int64(len(data)) {
			t.Fatalf("file %d: chunks end at %d of %d bytes", i, last.Offset+last.Length, len(data))
		}
	}

	// The cue is an ID3 PES, declared in the PMT with the ID3 descriptors, at its time.
	found := false
	for _, name := range files {
		tags := readID3(t, name)
		for pts, tag := range tags {
			text, err := metadata.ID3Text(tag)
			if err != nil || text != "hello from the archive" {
				t.Fatalf("ID3 PES holds %q (%v)", text, err)
			}
			at := fromClock(pts - startDTS)
			if at < 4900*time.Millisecond || at > 5300*time.Millisecond {
				t.Fatalf("cue at %v, want about 5 s", at)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no ID3 PES in the recording")
	}
}

func pid(pkt []byte) int { return int(pkt[1]&0x1F)<<8 | int(pkt[2]) }

// readID3 demuxes a TS file with astits and returns its ID3 PES payloads by PTS, checking
// that the PMT declares the stream as Apple's spec says.
func readID3(t *testing.T, name string) map[int64][]byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dmx := astits.NewDemuxer(t.Context(), bytes.NewReader(data))
	out := map[int64][]byte{}
	pmtOK := false
	for {
		d, err := dmx.NextData()
		if err != nil {
			break
		}
		if d.PMT != nil {
			ptr := false
			for _, pd := range d.PMT.ProgramDescriptors {
				ptr = ptr || pd.Tag == 0x25
			}
			for _, es := range d.PMT.ElementaryStreams {
				if es.ElementaryPID == pidID3 && es.StreamType == astits.StreamTypeMetadata && ptr {
					for _, ed := range es.ElementaryStreamDescriptors {
						pmtOK = pmtOK || ed.Tag == 0x26
					}
				}
			}
		}
		if d.PES != nil && d.PID == pidID3 {
			if d.PES.Header.StreamID != 0xBD || d.PES.Header.OptionalHeader == nil || d.PES.Header.OptionalHeader.PTS == nil {
				t.Fatalf("ID3 PES header %+v", d.PES.Header)
			}
			out[d.PES.Header.OptionalHeader.PTS.Base] = d.PES.Data
		}
	}
	if !pmtOK {
		t.Fatalf("%s: PMT lacks the ID3 stream with metadata_pointer and metadata descriptors", name)
	}
	return out
}

// TestTimelineContinues checks that a discontinuity (a new stream in the same recording)
// continues the timeline where it stopped instead of jumping.
func TestTimelineContinues(t *testing.T) {
	col := cmafStream(t, 6, time.Hour, "")
	tracks, err := ParseInit(col.init)
	if err != nil {
		t.Fatal(err)
	}
	tl := NewTimeline(0)
	tl.SetInit(tracks)
	var buf bytes.Buffer
	f, err := Create(&buf, tl)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range col.segs {
		if _, _, err := f.WriteSegment(s, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	first := tl.Elapsed()
	// The same segments again, flagged as a new stream: their timestamps go back in time.
	for i, s := range col.segs {
		s.Discontinuity = i == 0
		if _, _, err := f.WriteSegment(s, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := tl.Elapsed(); got < 2*first-50*time.Millisecond || got > 2*first+50*time.Millisecond {
		t.Fatalf("timeline %v after two copies of %v", got, first)
	}
	var sum time.Duration
	for _, c := range f.Chunks() {
		sum += c.Duration
	}
	if sum < 2*first-50*time.Millisecond || sum > 2*first+50*time.Millisecond {
		t.Fatalf("chunks sum to %v, want %v", sum, 2*first)
	}
}

// testCtx is the context the tests write under.
var testCtx = context.Background()
