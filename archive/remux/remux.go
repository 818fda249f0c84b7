// Package remux turns the origin's CMAF fMP4 segments into MPEG-TS files without re-encoding:
// mediacommon demuxes the fMP4 and its MPEG-TS writer muxes the samples again. Timed metadata
// carried in emsg boxes becomes an ID3 PES stream, so recorded cues replay from TS.
package remux

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"glasscast/metadata"
)

// ErrUnsupported is returned for an init segment whose tracks MPEG-TS cannot carry.
var ErrUnsupported = errors.New("unsupported track")

// clockRate is MPEG-TS's 90 kHz clock.
const clockRate = 90000

// startDTS is where a recording's timeline begins. PCR runs a little ahead of DTS, so the
// timeline starts above zero (ffmpeg's mpegts muxer uses the same 1.4 s).
const startDTS = 126000

// Tracks are the tracks of one init segment that a TS file carries.
type Tracks struct {
	Video *fmp4.InitTrack // nil for audio-only renditions
	Audio *fmp4.InitTrack // nil for video-only renditions
}

// ParseInit reads an fMP4 init segment. It keeps the first video and first audio track, the
// two a rendition of the origin has.
func ParseInit(b []byte) (*Tracks, error) {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	t := &Tracks{}
	for _, tr := range in.Tracks {
		switch tr.Codec.(type) {
		case *mp4codecs.H264, *mp4codecs.H265:
			if t.Video == nil {
				t.Video = tr
			}
		case *mp4codecs.MPEG4Audio, *mp4codecs.Opus:
			if t.Audio == nil {
				t.Audio = tr
			}
		}
		if tr.TimeScale == 0 {
			return nil, fmt.Errorf("track %d: zero timescale", tr.ID)
		}
	}
	if t.Video == nil && t.Audio == nil {
		return nil, fmt.Errorf("no H.264, H.265, AAC or Opus track: %w", ErrUnsupported)
	}
	return t, nil
}

// H265 reports whether the video track is H.265.
func (t *Tracks) H265() bool {
	if t.Video == nil {
		return false
	}
	_, ok := t.Video.Codec.(*mp4codecs.H265)
	return ok
}

// tsCodec is the MPEG-TS codec of an fMP4 track.
func tsCodec(tr *fmp4.InitTrack) tscodecs.Codec {
	switch c := tr.Codec.(type) {
	case *mp4codecs.H264:
		return &tscodecs.H264{}
	case *mp4codecs.H265:
		return &tscodecs.H265{}
	case *mp4codecs.MPEG4Audio:
		return &tscodecs.MPEG4Audio{Config: c.Config}
	case *mp4codecs.Opus:
		return &tscodecs.Opus{ChannelCount: c.ChannelCount} //nolint:staticcheck // the writer derives its descriptor from it
	}
	return nil
}

// Segment is one complete segment of the origin.
type Segment struct {
	Data []byte
	// PDT is the wall-clock time of the segment's first sample.
	PDT time.Time
	// Discontinuity says the segment's timestamps do not follow the previous segment's (a new
	// stream, a reconnect, an origin discontinuity): the timeline continues from where it was.
	Discontinuity bool
}

// Chunk is one keyframe interval of a TS file: a byte range that starts with PAT, PMT and a
// key frame, the unit of a byte-range playlist.
type Chunk struct {
	Offset   int64         `json:"off"`
	Length   int64         `json:"len"`
	Start    time.Duration `json:"start"` // on the recording's timeline
	Duration time.Duration `json:"dur"`
	PDT      time.Time     `json:"pdt"`
}

// Keyframe is a key frame in Annex-B form with its parameter sets, ready for a decoder.
type Keyframe struct {
	Time   time.Duration // on the recording's timeline
	AnnexB []byte
	H265   bool
}

// sample is one access unit or cue, placed on the output timeline.
type sample struct {
	track *fmp4.InitTrack // nil for a cue
	dts   int64           // output DTS, 90 kHz
	pts   int64
	dur   int64
	s     *fmp4.Sample
	cue   []byte // ID3 tag
}

// Timeline maps every segment of a rendition onto one continuous 90 kHz timeline, across
// streams and TS files: a discontinuity continues where the previous segment ended.
type Timeline struct {
	tracks *Tracks
	offset int64 // added to input timestamps (converted to 90 kHz)
	next   int64 // output DTS where the timeline ends so far
	mapped bool
}

// NewTimeline starts a timeline at elapsed (the duration already recorded, after a restart).
func NewTimeline(elapsed time.Duration) *Timeline {
	return &Timeline{next: startDTS + toClock(elapsed)}
}

// SetInit sets the tracks of the segments that follow.
func (tl *Timeline) SetInit(t *Tracks) { tl.tracks = t }

// Tracks returns the current tracks, nil before SetInit.
func (tl *Timeline) Tracks() *Tracks { return tl.tracks }

// Elapsed is the duration recorded on the timeline.
func (tl *Timeline) Elapsed() time.Duration { return fromClock(tl.next - startDTS) }

func toClock(d time.Duration) int64   { return int64(d) * clockRate / int64(time.Second) }
func fromClock(v int64) time.Duration { return time.Duration(v * int64(time.Second) / clockRate) }

// rescale converts v ticks of timescale to 90 kHz.
func rescale(v int64, timescale uint32) int64 {
	if timescale == clockRate {
		return v
	}
	return v/int64(timescale)*clockRate + v%int64(timescale)*clockRate/int64(timescale)
}

// layout demuxes a segment into samples on the output timeline, in writing order. It
// advances the timeline.
func (tl *Timeline) layout(seg Segment) ([]sample, error) {
	if tl.tracks == nil {
		return nil, errors.New("segment before init")
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(seg.Data); err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	msgs, err := metadata.ParseEmsg(seg.Data)
	if err != nil {
		msgs = nil // a bad cue must not cost the media
	}
	var out []sample
	first := int64(-1)
	for _, p := range parts {
		for _, pt := range p.Tracks {
			tr := tl.trackByID(pt.ID)
			if tr == nil {
				continue
			}
			dts := int64(pt.BaseTime)
			for _, s := range pt.Samples {
				d := rescale(dts, tr.TimeScale)
				out = append(out, sample{track: tr, dts: d, pts: d + rescale(int64(s.PTSOffset), tr.TimeScale),
					dur: rescale(int64(s.Duration), tr.TimeScale), s: s})
				if first < 0 || d < first {
					first = d
				}
				dts += int64(s.Duration)
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if !tl.mapped || seg.Discontinuity {
		tl.offset = tl.next - first
		tl.mapped = true
	}
	for i := range out {
		out[i].dts += tl.offset
		out[i].pts += tl.offset
	}
	seen := map[uint32]bool{}
	for _, m := range msgs {
		if m.Version != 1 || m.Timescale == 0 || seen[m.ID] || m.Text == "" && len(m.Data) == 0 {
			continue // the version 0 twin carries the same tag
		}
		seen[m.ID] = true
		at := rescale(int64(m.PresentationTime), m.Timescale) + tl.offset
		out = append(out, sample{dts: at, pts: at, cue: m.Data})
	}
	slices.SortStableFunc(out, func(a, b sample) int {
		switch {
		case a.dts < b.dts:
			return -1
		case a.dts > b.dts:
			return 1
		}
		return 0
	})
	// A segment that starts with a key frame starts a chunk, and a chunk must start with the
	// tables and that key frame: audio a few milliseconds earlier follows it instead.
	for i := range out {
		if out[i].track == tl.tracks.Video && out[i].track != nil {
			if !out[i].s.IsNonSyncSample && i > 0 {
				kf := out[i]
				copy(out[1:i+1], out[:i])
				out[0] = kf
			}
			break
		}
	}
	lead := tl.tracks.Video
	if lead == nil {
		lead = tl.tracks.Audio
	}
	for _, s := range out {
		if s.track != nil && s.track == lead {
			tl.next = max(tl.next, s.dts+s.dur)
		}
	}
	return out, nil
}

func (tl *Timeline) trackByID(id int) *fmp4.InitTrack {
	if v := tl.tracks.Video; v != nil && v.ID == id {
		return v
	}
	if a := tl.tracks.Audio; a != nil && a.ID == id {
		return a
	}
	return nil
}

// annexB returns a video sample as an access unit, with the init's parameter sets in front of
// a key frame: TS carries them in band, where fMP4 keeps them in the init segment.
func annexB(tr *fmp4.InitTrack, s *fmp4.Sample) ([][]byte, error) {
	var au h264.AVCC
	if err := au.Unmarshal(s.Payload); err != nil {
		return nil, fmt.Errorf("video sample: %w", err)
	}
	if s.IsNonSyncSample {
		return au, nil
	}
	switch c := tr.Codec.(type) {
	case *mp4codecs.H264:
		for _, n := range au {
			if len(n) > 0 && h264.NALUType(n[0]&0x1F) == h264.NALUTypeSPS {
				return au, nil
			}
		}
		return append([][]byte{c.SPS, c.PPS}, au...), nil
	case *mp4codecs.H265:
		for _, n := range au {
			if len(n) > 0 && h265.NALUType((n[0]>>1)&0x3F) == h265.NALUType_SPS_NUT {
				return au, nil
			}
		}
		return append([][]byte{c.VPS, c.SPS, c.PPS}, au...), nil
	}
	return au, nil
}
