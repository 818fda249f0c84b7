package remux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// PIDs are fixed so that every file of a recording has the same program layout.
const (
	pidVideo = 256
	pidAudio = 257
	pidID3   = 258
)

// File is one MPEG-TS file being written: the samples of whole segments, cut into chunks at
// key frames.
type File struct {
	tl     *Timeline
	tracks *Tracks
	out    *packets
	bw     *bufio.Writer
	ts     *mpegts.Writer
	video  *mpegts.Track
	audio  *mpegts.Track
	chunks []Chunk
	start  int64 // output DTS of the first chunk
	end    int64 // output DTS where the file's media ends
}

// Create starts a TS file on w for the timeline's current tracks.
func Create(w io.Writer, tl *Timeline) (*File, error) {
	if tl.tracks == nil {
		return nil, errors.New("file before init")
	}
	f := &File{tl: tl, tracks: tl.tracks, bw: bufio.NewWriterSize(w, 64<<10)}
	f.out = newPackets(f.bw)
	var tracks []*mpegts.Track
	if v := tl.tracks.Video; v != nil {
		f.video = &mpegts.Track{PID: pidVideo, Codec: tsCodec(v)}
		tracks = append(tracks, f.video)
	}
	if a := tl.tracks.Audio; a != nil {
		f.audio = &mpegts.Track{PID: pidAudio, Codec: tsCodec(a)}
		tracks = append(tracks, f.audio)
	}
	f.ts = &mpegts.Writer{W: f.out, Tracks: tracks}
	if err := f.ts.Initialize(); err != nil {
		return nil, fmt.Errorf("mpeg-ts writer: %w", err)
	}
	return f, nil
}

// Tracks are the tracks the file was created for; a segment with other tracks needs a new file.
func (f *File) Tracks() *Tracks { return f.tracks }

// Size is the number of bytes written so far (buffered included).
func (f *File) Size() int64 { return f.out.n }

// Duration is the media duration of the file.
func (f *File) Duration() time.Duration {
	if len(f.chunks) == 0 {
		return 0
	}
	return fromClock(f.end - f.start)
}

// Chunks returns the file's chunks; the last one grows while segments without a key frame at
// their start are added.
func (f *File) Chunks() []Chunk { return f.chunks }

// Flush writes buffered bytes to the underlying writer.
func (f *File) Flush() error { return f.bw.Flush() }

// WriteOptions tunes WriteSegment.
type WriteOptions struct {
	// WantKeyframe is asked about every key frame's time; a true answer returns that frame.
	WantKeyframe func(t time.Duration) bool
}

// WriteSegment muxes one segment and returns how many leading chunks are unchanged (chunks
// from that index on are new or grew) and the key frames asked for. Every byte of the segment
// is written, so the chunks end exactly at Size once the buffer is flushed.
func (f *File) WriteSegment(seg Segment, o WriteOptions) (int, []Keyframe, error) {
	if f.tl.tracks != f.tracks {
		return 0, nil, errors.New("tracks changed: start a new file")
	}
	samples, err := f.tl.layout(seg)
	if err != nil {
		return 0, nil, err
	}
	unchanged := max(len(f.chunks)-1, 0)
	if len(samples) == 0 {
		return unchanged, nil, nil
	}
	var kfs []Keyframe
	segStart := samples[0].dts
	for _, s := range samples {
		segStart = min(segStart, s.dts)
	}
	// Audio-only renditions cut a chunk per segment: every AAC frame is a random access point.
	if f.video == nil {
		f.startChunk(segStart, seg, segStart)
	}
	for _, s := range samples {
		switch {
		case s.track == nil:
			if err := f.out.writeID3(s.pts, s.cue); err != nil {
				return 0, nil, err
			}
		case s.track == f.tracks.Video:
			au, err := annexB(s.track, s.s)
			if err != nil {
				return 0, nil, err
			}
			sync := !s.s.IsNonSyncSample
			if sync || len(f.chunks) == 0 {
				f.startChunk(s.dts, seg, segStart)
			}
			if sync && o.WantKeyframe != nil {
				t := fromClock(s.dts - startDTS)
				if o.WantKeyframe(t) {
					b, err := h264.AnnexB(au).Marshal()
					if err == nil {
						kfs = append(kfs, Keyframe{Time: t, AnnexB: b, H265: f.tracks.H265()})
					}
				}
			}
			if f.tracks.H265() {
				err = f.ts.WriteH265(f.video, wrap(s.pts), wrap(s.dts), au)
			} else {
				err = f.ts.WriteH264(f.video, wrap(s.pts), wrap(s.dts), au)
			}
			if err != nil {
				return 0, nil, fmt.Errorf("write video: %w", err)
			}
		default:
			switch s.track.Codec.(type) {
			case *mp4codecs.MPEG4Audio:
				err = f.ts.WriteMPEG4Audio(f.audio, wrap(s.pts), [][]byte{s.s.Payload})
			case *mp4codecs.Opus:
				err = f.ts.WriteOpus(f.audio, wrap(s.pts), [][]byte{s.s.Payload})
			}
			if err != nil {
				return 0, nil, fmt.Errorf("write audio: %w", err)
			}
		}
		if s.track != nil && s.track == f.leading() {
			f.end = max(f.end, s.dts+s.dur)
		}
		if f.out.err != nil {
			return 0, nil, f.out.err
		}
	}
	f.closeChunk()
	return unchanged, kfs, nil
}

// leading is the track whose frames measure durations: video when there is video.
func (f *File) leading() *fmp4.InitTrack {
	if f.tracks.Video != nil {
		return f.tracks.Video
	}
	return f.tracks.Audio
}

// startChunk ends the current chunk and starts one at the current byte offset.
func (f *File) startChunk(dts int64, seg Segment, segStart int64) {
	f.closeChunk()
	if len(f.chunks) == 0 {
		f.start = dts
	}
	f.chunks = append(f.chunks, Chunk{
		Offset: f.out.n,
		Start:  fromClock(dts - startDTS),
		PDT:    seg.PDT.Add(fromClock(dts - segStart)).UTC(),
	})
}

// closeChunk sets the last chunk's length and duration from what has been written.
func (f *File) closeChunk() {
	if len(f.chunks) == 0 {
		return
	}
	c := &f.chunks[len(f.chunks)-1]
	c.Length = f.out.n - c.Offset
	c.Duration = fromClock(f.end-startDTS) - c.Start
}

// wrap keeps a timestamp inside MPEG-TS's 33 bits; players unwrap it.
func wrap(v int64) int64 { return v & (1<<33 - 1) }
