package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"glasscast/media"
)

// recorder is an Output that keeps everything, as the origin would.
type recorder struct {
	inits []recordedInit
	parts []media.Part
	// onPart runs after each part is recorded (tests add cues from it).
	onPart func(media.Part)
	// implicitEnds accepts a segment's first part after a part not marked Last, as the
	// origin does (Config.EarlyParts at an unforeseen key frame).
	implicitEnds bool
	repeated     []int // the parts, by index, that were sent again (marked Last)
}

type recordedInit struct {
	r       media.Rendition
	b       []byte
	atParts int // parts recorded before this init
}

// testCtx is the context the tests write under.
var testCtx = context.Background()

func (r *recorder) Init(_ context.Context, rend media.Rendition, b []byte) error {
	r.inits = append(r.inits, recordedInit{rend, b, len(r.parts)})
	return nil
}

func (r *recorder) Part(_ context.Context, _ string, p media.Part) error {
	if n := len(r.parts); n > 0 && r.parts[n-1].MSN == p.MSN && r.parts[n-1].Index == p.Index &&
		bytes.Equal(r.parts[n-1].Data, p.Data) {
		// As the origin takes a repeat: nothing new, but marked Last it ends the segment.
		r.repeated = append(r.repeated, n-1)
		r.parts[n-1].Last = r.parts[n-1].Last || p.Last
		return nil
	}
	r.parts = append(r.parts, p)
	if r.onPart != nil {
		r.onPart(p)
	}
	return nil
}

// segments groups parts by MSN, checking order on the way.
func (r *recorder) segments(t *testing.T) [][]media.Part {
	t.Helper()
	var segs [][]media.Part
	for i, p := range r.parts {
		if i == 0 || r.parts[i-1].Last || r.implicitEnds && p.Index == 0 && p.MSN == r.parts[i-1].MSN+1 {
			if i > 0 && p.MSN != r.parts[i-1].MSN+1 {
				t.Fatalf("part %d: MSN %d after %d", i, p.MSN, r.parts[i-1].MSN)
			}
			if p.Index != 0 {
				t.Fatalf("part %d: segment %d starts at index %d", i, p.MSN, p.Index)
			}
			segs = append(segs, nil)
		} else if p.MSN != r.parts[i-1].MSN || p.Index != r.parts[i-1].Index+1 {
			t.Fatalf("part %d: %d.%d after %d.%d", i, p.MSN, p.Index, r.parts[i-1].MSN, r.parts[i-1].Index)
		}
		segs[len(segs)-1] = append(segs[len(segs)-1], p)
	}
	return segs
}

// duration is the sum of the parts' durations: the timeline the playlists list.
func (r *recorder) duration() (d time.Duration) {
	for _, p := range r.parts {
		d += p.Duration
	}
	return d
}

// file writes the init and every part, as a player would concatenate them.
func (r *recorder) file(t *testing.T) string {
	t.Helper()
	var b []byte
	b = append(b, r.inits[0].b...)
	for _, p := range r.parts {
		b = append(b, p.Data...)
	}
	path := filepath.Join(t.TempDir(), "stream.mp4")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkParts asserts the rules the origin relies on: P2 for every part, segments within the
// rounded TARGETDURATION, key frames where Independent says, and per-track tfdt continuity.
func checkParts(t *testing.T, rec *recorder, partTarget, segTarget time.Duration) {
	t.Helper()
	for _, f := range partTimingFaults(t, rec, partTarget, segTarget) {
		t.Error(f)
	}
	checkStructure(t, rec)
}

// partTimingFaults lists the parts that break P2 and the segments longer than TARGETDURATION.
func partTimingFaults(t *testing.T, rec *recorder, partTarget, segTarget time.Duration) (faults []string) {
	t.Helper()
	td := int(math.Ceil(segTarget.Seconds()))
	for _, seg := range rec.segments(t) {
		var d time.Duration
		for _, p := range seg {
			d += p.Duration
			if p.Duration > partTarget {
				faults = append(faults, fmt.Sprintf("part %d.%d: %v > PART-TARGET %v", p.MSN, p.Index, p.Duration, partTarget))
			}
			if !p.Last && !p.Independent && p.Duration*100 < partTarget*85 {
				faults = append(faults, fmt.Sprintf("part %d.%d: %v < 85%% of PART-TARGET %v", p.MSN, p.Index, p.Duration, partTarget))
			}
		}
		if math.Round(d.Seconds()) > float64(td) {
			faults = append(faults, fmt.Sprintf("segment %d: %v rounds above TARGETDURATION %d", seg[0].MSN, d, td))
		}
	}
	return faults
}

// checkStructure asserts what holds whatever the input's timing: key frames where Independent
// says, mfhd sequence numbers in order, per-track tfdt continuity, and video samples that span
// each part's Duration.
func checkStructure(t *testing.T, rec *recorder) {
	t.Helper()
	var seq uint32
	end := map[int]uint64{}
	for i, p := range rec.parts {
		var parts fmp4.Parts
		if err := parts.Unmarshal(p.Data); err != nil {
			t.Fatalf("part %d.%d: %v", p.MSN, p.Index, err)
		}
		if len(parts) != 1 {
			t.Fatalf("part %d.%d: %d moofs", p.MSN, p.Index, len(parts))
		}
		fp := parts[0]
		if i > 0 && fp.SequenceNumber != seq+1 {
			t.Errorf("part %d.%d: mfhd sequence %d after %d", p.MSN, p.Index, fp.SequenceNumber, seq)
		}
		seq = fp.SequenceNumber
		for _, tr := range fp.Tracks {
			if e, ok := end[tr.ID]; ok && tr.BaseTime != e && !(p.Discontinuity && tr.BaseTime > e) {
				t.Errorf("part %d.%d track %d: tfdt %d, previous part ended at %d", p.MSN, p.Index, tr.ID, tr.BaseTime, e)
			}
			e := tr.BaseTime
			for _, s := range tr.Samples {
				e += uint64(s.Duration)
			}
			end[tr.ID] = e
			if tr.ID == 1 && len(tr.Samples) > 0 && rec.inits[0].r.Width > 0 {
				if key := !tr.Samples[0].IsNonSyncSample; key != p.Independent {
					t.Errorf("part %d.%d: starts with key frame %v, Independent %v", p.MSN, p.Index, key, p.Independent)
				}
				var dur uint64
				for _, s := range tr.Samples {
					dur += uint64(s.Duration)
				}
				if got := toDuration(int64(dur), videoTimescale); got != p.Duration {
					t.Errorf("part %d.%d: video samples span %v, Duration %v", p.MSN, p.Index, got, p.Duration)
				}
			}
		}
	}
}

type probeResult struct {
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		NbReadFrames string `json:"nb_read_frames"`
		Duration     string `json:"duration"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// ffprobe decodes every frame of path and fails the test on any decoder complaint. It returns
// the frames decoded per stream type and the video stream's duration.
func ffprobe(t *testing.T, path string) (res probeResult, frames map[string]int, dur time.Duration) {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,codec_name,width,height,nb_read_frames,duration:format=duration", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffprobe complained: %s", stderr.String())
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	frames = map[string]int{}
	for _, s := range res.Streams {
		n, _ := strconv.Atoi(s.NbReadFrames)
		frames[s.CodecType] = n
		if s.CodecType == "video" || dur == 0 {
			secs, _ := strconv.ParseFloat(s.Duration, 64)
			dur = time.Duration(secs * float64(time.Second))
		}
	}
	return res, frames, dur
}

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
}

// encode runs ffmpeg on a lavfi test pattern and returns the MPEG-TS it wrote. video and
// audio are ffmpeg arguments for each stream; an empty one leaves the stream out.
func encode(t testing.TB, seconds float64, video, audio []string) string {
	t.Helper()
	needFFmpeg(t)
	path := filepath.Join(t.TempDir(), "in.ts")
	args := []string{"-hide_banner", "-loglevel", "error", "-y"}
	if video != nil {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("%s:duration=%g", video[0], seconds))
	}
	if audio != nil {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=%s:duration=%g", audio[0], seconds))
	}
	if video != nil {
		args = append(args, video[1:]...)
	}
	if audio != nil {
		args = append(args, audio[1:]...)
	}
	args = append(args, "-f", "mpegts", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return path
}

// x264 returns ffmpeg arguments for a testsrc2 pattern in H.264.
func x264(size string, rate string, gop int, extra ...string) []string {
	a := []string{"testsrc2=size=" + size + ":rate=" + rate, "-c:v", "libx264", "-preset", "veryfast",
		"-pix_fmt", "yuv420p", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0"}
	return append(a, extra...)
}

func aac() []string { return []string{"48000", "-c:a", "aac", "-b:a", "128k"} }

// unit is one access unit read back from MPEG-TS.
type unit struct {
	video    bool
	pts, dts time.Duration
	au       [][]byte // video
	data     []byte   // audio
}

type input struct {
	video, audio codecs.Codec
	units        []unit
	h265, opus   bool
}

// readTS reads an MPEG-TS file into access units with timestamps rounded to the millisecond,
// as RTMP delivers them, and shifted to start near zero like an RTMP session's.
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
		ms := math.Round(float64(ts-base) / 90)
		return time.Duration(ms) * time.Millisecond
	}
	for _, tr := range r.Tracks() {
		switch c := tr.Codec.(type) {
		case *tscodecs.H264:
			in.video = &codecs.H264{}
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				d := rtmp(dts)
				in.units = append(in.units, unit{video: true, pts: d + rtmp(pts) - rtmp(dts), dts: d, au: au})
				return nil
			})
		case *tscodecs.H265:
			in.video, in.h265 = &codecs.H265{}, true
			r.OnDataH265(tr, func(pts, dts int64, au [][]byte) error {
				d := rtmp(dts)
				in.units = append(in.units, unit{video: true, pts: d + rtmp(pts) - rtmp(dts), dts: d, au: au})
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
		case *tscodecs.Opus:
			in.audio, in.opus = &codecs.Opus{ChannelCount: c.Desc.ChannelCount()}, true
			r.OnDataOpus(tr, func(pts int64, packets [][]byte) error {
				for _, pkt := range packets {
					in.units = append(in.units, unit{pts: rtmp(pts), dts: rtmp(pts), data: pkt})
					pts += opus.PacketDuration2(pkt) * 90000 / 48000
				}
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			break
		}
	}
	return in
}

// feed writes units to p, as the RTMP ingest would.
// packAll packages the whole of in and closes the packager.
func packAll(t testing.TB, cfg Config, in input, withAudio bool) (*Packager, *recorder) {
	t.Helper()
	rec := &recorder{}
	audio := in.audio
	if !withAudio {
		audio = nil
	}
	p, err := New(cfg, in.video, audio, rec)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, in, in.units)
	if err := p.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func feed(t testing.TB, p *Packager, in input, units []unit) {
	t.Helper()
	for i, u := range units {
		var err error
		switch {
		case u.video && in.h265:
			err = p.WriteH265(testCtx, u.pts, u.dts, u.au)
		case u.video:
			err = p.WriteH264(testCtx, u.pts, u.dts, u.au)
		case in.opus:
			err = p.WriteOpus(testCtx, u.pts, u.data)
		default:
			err = p.WriteMPEG4Audio(testCtx, u.pts, u.data)
		}
		if err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
}

func countVideo(units []unit) (n int) {
	for _, u := range units {
		if u.video {
			n++
		}
	}
	return n
}

// fixedClock is a Config.Now that returns one instant.
func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// newAtClock packages in's tracks into a recorder with the wall clock stopped at wall, so cue
// and ad-break times are exact.
func newAtClock(t testing.TB, in input, wall time.Time) (*Packager, *recorder) {
	t.Helper()
	rec := &recorder{}
	p, err := New(Config{Now: fixedClock(wall)}, in.video, in.audio, rec)
	if err != nil {
		t.Fatal(err)
	}
	return p, rec
}
