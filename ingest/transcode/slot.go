package transcode

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/ingest/packager"
	"glasscast/media"
)

// tsOffset is where a run's timestamps start on ffmpeg's input: a few seconds in, so that
// nothing near zero can wrap below it.
const tsOffset = 10 * 90000

// Bounds of what a slot keeps while its transcoder catches up.
const (
	maxSlotAudio = 1024 // AAC frames: about 21 s at 48 kHz
	maxSlotCues  = 64
)

// pendingCue is a cue waiting for the rendition's video to pass the instant it belongs to.
type pendingCue struct {
	c  media.Cue
	at time.Duration // input decode time of the source frame it was attached after
}

// slot feeds one transcoded rung's packager: ffmpeg's frames mapped back to the input frames
// they came from, the source's audio interleaved by time, and cues after the same frame as in
// the source. Its packager output goes to the gate.
type slot struct {
	idx        int
	rung       Rung
	gate       *gate
	audioCodec codecs.Codec

	mu      sync.Mutex
	run     int
	pkg     *packager.Packager
	fed     *fedIndex
	base    time.Duration // input time of the run's first key frame (decode time)
	cto     time.Duration // its composition offset, kept by every transcoded frame
	prevTS  int64
	haveTS  bool
	lastDTS time.Duration
	wrote   bool
	audio   []frame
	cues    []pendingCue
	seq     uint32 // moof sequence number a successor packager continues from
	err     error

	// Read by the ladder's lag check.
	lastIn   atomic.Int64 // input presentation time of the newest frame out of ffmpeg
	produced atomic.Bool
}

// begin starts feeding a new packager from a transcoder run whose segments start at seg.
func (s *slot) begin(run int, seg segmentStart, fed *fedIndex, cfg packager.Config, partTarget time.Duration, audio []frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg.Rendition = s.rung.Name
	cfg.Start = packager.Start{MSN: seg.msn, Time: seg.media, PartTarget: partTarget, Sequence: s.seq}
	wall := seg.wall
	cfg.Now = func() time.Time { return wall }
	pkg, err := packager.New(cfg, &codecs.H264{}, s.audioCodec, &slotOutput{s})
	if err != nil {
		return err
	}
	s.run, s.pkg, s.fed, s.err = run, pkg, fed, nil
	s.base, s.cto = seg.dts, seg.pts-seg.dts
	s.haveTS, s.wrote = false, false
	s.audio = append(s.audio[:0], audio...)
	// Cues before the run's first frame are in the source segments this rendition copied.
	kept := s.cues[:0]
	for _, c := range s.cues {
		if c.at >= seg.dts {
			kept = append(kept, c)
		}
	}
	s.cues = kept
	s.produced.Store(false)
	return nil
}

// onVideo packages one access unit ffmpeg produced in run.
func (s *slot) onVideo(ctx context.Context, run int, ts int64, au [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run != s.run || s.pkg == nil || s.err != nil {
		return // a late frame of a run already ended
	}
	if s.haveTS {
		ts = unwrap33(s.prevTS, ts)
	}
	s.prevTS, s.haveTS = ts, true
	f, ok := s.fed.nearest(ts)
	if !ok {
		return
	}
	in := s.base + fromTicks90(f.pts-tsOffset)
	dts := in - s.cto
	if s.wrote && dts <= s.lastDTS {
		return // two outputs mapped to one input frame: keep the first
	}
	for len(s.cues) > 0 && s.cues[0].at < dts {
		s.pkg.AddCue(s.cues[0].c)
		s.cues = s.cues[1:]
	}
	s.writeAudio(ctx, f.mark)
	if err := s.pkg.WriteH264(ctx, in, dts, au); err != nil {
		s.err = err
		return
	}
	s.lastDTS, s.wrote = dts, true
	s.lastIn.Store(int64(in))
	s.produced.Store(true)
}

// writeAudio packages the source audio up to upTo.
func (s *slot) writeAudio(ctx context.Context, upTo time.Duration) {
	n := 0
	for _, f := range s.audio {
		if f.pts > upTo {
			break
		}
		var err error
		if _, ok := s.audioCodec.(*codecs.Opus); ok {
			err = s.pkg.WriteOpus(ctx, f.pts, f.audio)
		} else {
			err = s.pkg.WriteMPEG4Audio(ctx, f.pts, f.audio)
		}
		n++
		if err != nil {
			s.err = err
			break
		}
	}
	clear(s.audio[:n])
	s.audio = s.audio[n:]
}

// addAudio queues a source audio frame for the running packager.
func (s *slot) addAudio(f frame) {
	if s.audioCodec == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pkg == nil {
		return
	}
	if len(s.audio) >= maxSlotAudio {
		s.audio = s.audio[1:]
	}
	s.audio = append(s.audio, f)
}

// addCue queues a cue the source got after its frame at input decode time at.
func (s *slot) addCue(c media.Cue, at time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cues) >= maxSlotCues {
		s.cues = s.cues[1:]
	}
	s.cues = append(s.cues, pendingCue{c, at})
}

// stop ends run's packager, flushing its last part. At the end of the stream (final) the
// remaining audio and cues go into that part, as they do in the source's.
func (s *slot) stop(ctx context.Context, run int, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != run || s.pkg == nil {
		return
	}
	if s.err == nil {
		if final {
			for _, c := range s.cues {
				s.pkg.AddCue(c.c)
			}
			s.cues = nil
		}
		if final {
			s.writeAudio(ctx, time.Duration(math.MaxInt64)) // all the source had
		}
		if err := s.pkg.Close(ctx); err != nil && !errors.Is(err, s.err) {
			s.err = err
		}
	}
	s.seq = max(s.pkg.State().Sequence, 1)
	s.pkg, s.run, s.audio = nil, 0, nil
}

// failure returns the packaging error that stopped the slot, if any.
func (s *slot) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// slotOutput passes a slot's packager output to the gate.
type slotOutput struct{ s *slot }

func (o *slotOutput) Init(_ context.Context, r media.Rendition, b []byte) error {
	o.s.gate.transcodedInit(o.s.idx, r, b)
	return nil
}

func (o *slotOutput) Part(ctx context.Context, _ string, p media.Part) error {
	o.s.gate.transcodedPart(ctx, o.s.idx, p)
	return nil
}
