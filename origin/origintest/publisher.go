// Package origintest publishes synthetic broadcasts into a media.Sink: real fMP4 init segments
// and parts (an H.264 and an AAC track with made-up payloads) at real-time pace or one step at
// a time. Tests of the origin, the push hop and the edge use it where an encoder would be slow.
package origintest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/media"
)

// Config describes the synthetic broadcast. Zero fields take the defaults noted.
type Config struct {
	ChannelID string // default "test"
	StreamID  string // default "stream-1"
	// Normal publishes a NORMAL-latency stream: one part per segment, no PART-TARGET.
	Normal         bool
	TargetDuration time.Duration // default 1 s; every segment lasts exactly this
	PartTarget     time.Duration // default 200 ms; every part lasts exactly this
	// Renditions defaults to "720p" (2 Mb/s) and "360p" (600 kb/s), 30 fps.
	Renditions []media.Rendition
	// Backfill publishes this many complete segments at Open, dated just before now, so that
	// a test starts with a full window instead of waiting for one.
	Backfill int
	// FirstMSN is the MSN of the first segment.
	FirstMSN uint64
	// CueEvery attaches a timed-metadata cue to the first part of every CueEvery-th segment.
	CueEvery int
	// AdBreakEvery starts an ad break on every AdBreakEvery-th segment (from the second),
	// ending it two segments later, as the packager places InsertAdBreak's splice points.
	AdBreakEvery int
}

const (
	videoTimescale = 90000
	audioTimescale = 48000
	frameRate      = 30
	aacFrame       = 1024
)

// Publisher feeds one broadcast. Its methods are not meant to be called concurrently, except
// that Run may be stopped by cancelling its context from another goroutine.
type Publisher struct {
	sink media.Sink
	cfg  Config
	bc   media.Broadcast

	mu        sync.Mutex // guards the position, read by Position from other goroutines
	msn       uint64
	index     int
	started   bool
	pdt       time.Time
	videoDTS  uint64
	audioDTS  uint64
	seq       uint32
	gen       int
	disc      bool
	cues      int
	partsDone int
}

// New returns a Publisher for sink; nothing is published before Open.
func New(sink media.Sink, cfg Config) *Publisher {
	if cfg.ChannelID == "" {
		cfg.ChannelID = "test"
	}
	if cfg.StreamID == "" {
		cfg.StreamID = "stream-1"
	}
	if cfg.TargetDuration <= 0 {
		cfg.TargetDuration = time.Second
	}
	if cfg.PartTarget <= 0 {
		cfg.PartTarget = 200 * time.Millisecond
	}
	if cfg.Normal {
		cfg.PartTarget = cfg.TargetDuration
	}
	if len(cfg.Renditions) == 0 {
		cfg.Renditions = []media.Rendition{
			{Name: "720p", Codecs: "avc1.64001f,mp4a.40.2", Width: 1280, Height: 720, FrameRate: 30, Bandwidth: 2_000_000, AverageBandwidth: 1_800_000},
			{Name: "360p", Codecs: "avc1.4d401e,mp4a.40.2", Width: 640, Height: 360, FrameRate: 30, Bandwidth: 600_000, AverageBandwidth: 500_000},
		}
	}
	return &Publisher{sink: sink, cfg: cfg, msn: cfg.FirstMSN}
}

// Stream is the media.Stream the publisher opens.
func (p *Publisher) Stream() media.Stream {
	s := media.Stream{
		ChannelID:      p.cfg.ChannelID,
		StreamID:       p.cfg.StreamID,
		LowLatency:     !p.cfg.Normal,
		TargetDuration: p.cfg.TargetDuration,
	}
	if !p.cfg.Normal {
		s.PartTarget = p.cfg.PartTarget
	}
	return s
}

// Renditions lists the renditions published.
func (p *Publisher) Renditions() []media.Rendition { return p.cfg.Renditions }

// PartsPerSegment is how many parts make a segment.
func (p *Publisher) PartsPerSegment() int {
	return max(1, int(math.Round(float64(p.cfg.TargetDuration)/float64(p.cfg.PartTarget))))
}

// Open opens the broadcast, publishes every rendition's init segment and the backfill.
func (p *Publisher) Open(ctx context.Context) error {
	bc, err := p.sink.Open(ctx, p.Stream())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	p.bc = bc
	if err := p.publishInits(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	if p.pdt.IsZero() {
		p.pdt = time.Now().Add(-time.Duration(p.cfg.Backfill) * p.cfg.TargetDuration)
	}
	p.mu.Unlock()
	for range p.cfg.Backfill * p.PartsPerSegment() {
		if err := p.Step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publishInits(ctx context.Context) error {
	for i, r := range p.cfg.Renditions {
		r.Generation = p.gen
		p.cfg.Renditions[i] = r
		if err := p.bc.Init(ctx, r, initSegment()); err != nil {
			return fmt.Errorf("init %s: %w", r.Name, err)
		}
	}
	return nil
}

// Reconnect reopens the broadcast with the same StreamID, as a publisher that lost its
// connection does. The next part starts a new segment marked as a discontinuity; with newInit
// the renditions also get a new init generation.
func (p *Publisher) Reconnect(ctx context.Context, newInit bool) error {
	bc, err := p.sink.Open(ctx, p.Stream())
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	p.bc = bc
	if newInit {
		p.gen++
	}
	if err := p.publishInits(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index != 0 {
		p.msn++
		p.index = 0
	}
	p.disc = true
	return nil
}

// Position is the last part published to every rendition.
func (p *Publisher) Position() (msn uint64, part int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.index == 0 {
		if !p.started {
			return 0, 0, false
		}
		return p.msn - 1, p.PartsPerSegment() - 1, true
	}
	return p.msn, p.index - 1, true
}

// Step publishes the next part to every rendition.
func (p *Publisher) Step(ctx context.Context) error {
	p.mu.Lock()
	n := p.PartsPerSegment()
	dur := p.cfg.PartTarget
	part := media.Part{
		MSN:             p.msn,
		Index:           p.index,
		Duration:        dur,
		Independent:     p.index == 0,
		Last:            p.index == n-1,
		Discontinuity:   p.disc && p.index == 0,
		ProgramDateTime: p.pdt,
	}
	if p.index == 0 && p.cfg.CueEvery > 0 && p.msn%uint64(p.cfg.CueEvery) == 0 {
		p.cues++
		part.Cues = []media.Cue{{ID: fmt.Sprintf("cue-%d", p.cues), Time: p.pdt, Text: fmt.Sprintf("metadata %d", p.cues)}}
	}
	if k := uint64(p.cfg.AdBreakEvery); p.index == 0 && k > 0 && p.msn >= k {
		planned := 2 * p.cfg.TargetDuration
		out := p.msn - p.msn%k
		id, start := fmt.Sprintf("ad-%d", out), p.pdt.Add(-time.Duration(p.msn-out)*p.cfg.TargetDuration)
		switch p.msn % k {
		case 0:
			part.Cues = append(part.Cues, media.Cue{ID: id, Time: p.pdt, AdBreak: &media.AdBreak{Start: start, Planned: planned, SCTE35: []byte{0xfc, 1}}})
		case 2:
			part.Cues = append(part.Cues, media.Cue{ID: id, Time: p.pdt, AdBreak: &media.AdBreak{In: true, Start: start, Planned: planned, Duration: planned, SCTE35: []byte{0xfc, 2}}})
		}
	}
	videoDTS, audioDTS, seq := p.videoDTS, p.audioDTS, p.seq
	p.mu.Unlock()

	var nextVideo, nextAudio uint64
	for _, r := range p.cfg.Renditions {
		data, v, a := fragment(seq, videoDTS, audioDTS, dur, part.Independent, r.Bandwidth, part.MSN, part.Index)
		nextVideo, nextAudio = v, a
		part.Data = data
		if err := p.bc.Part(ctx, r.Name, part); err != nil {
			return fmt.Errorf("part %d.%d of %s: %w", part.MSN, part.Index, r.Name, err)
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = true
	p.disc = false
	p.videoDTS, p.audioDTS, p.seq = nextVideo, nextAudio, seq+1
	p.pdt = p.pdt.Add(dur)
	p.partsDone++
	p.index++
	if p.index == n {
		p.index = 0
		p.msn++
	}
	return nil
}

// Run publishes parts at real-time pace, each one part duration after the previous, until ctx
// is done. It returns nil when stopped by ctx.
func (p *Publisher) Run(ctx context.Context) error {
	base := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for k := 1; ; k++ {
		t.Reset(time.Until(base.Add(time.Duration(k) * p.cfg.PartTarget)))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Close ends the broadcast.
func (p *Publisher) Close(ctx context.Context) error {
	if p.bc == nil {
		return nil
	}
	return p.bc.Close(ctx)
}

// testSPS is a 1920x1080 H.264 SPS; init segments need a parsable one.
var testSPS = []byte{
	0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02,
	0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
	0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9,
	0x20,
}

func initSegment() []byte {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{
		{ID: 1, TimeScale: videoTimescale, Codec: &codecs.H264{SPS: testSPS, PPS: []byte{0x08}}},
		{ID: 2, TimeScale: audioTimescale, Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: mpeg4audio.ObjectTypeAACLC, SampleRate: audioTimescale, ChannelConfig: 2, ChannelCount: 2, //nolint:staticcheck
		}}},
	}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		panic(err) // fixed input: cannot fail
	}
	return buf.Bytes()
}

// fragment builds one part (moof+mdat) of dur with frames sized for bandwidth. Payloads carry
// the part's position so that every part's bytes differ.
func fragment(seq uint32, videoDTS, audioDTS uint64, dur time.Duration, key bool, bandwidth int, msn uint64, index int) ([]byte, uint64, uint64) {
	frames := max(1, int(math.Round(dur.Seconds()*frameRate)))
	total := uint64(math.Round(dur.Seconds() * videoTimescale))
	perFrame := max(64, bandwidth/8/frameRate)
	video := fmp4.PartTrack{ID: 1, BaseTime: videoDTS}
	for i := range frames {
		d := total / uint64(frames)
		if i == frames-1 {
			d = total - d*uint64(frames-1)
		}
		size := perFrame
		if key && i == 0 {
			size *= 4
		}
		video.Samples = append(video.Samples, &fmp4.Sample{
			Duration:        uint32(d),
			IsNonSyncSample: !(key && i == 0),
			Payload:         payload(size, msn, index, i),
		})
	}
	audio := fmp4.PartTrack{ID: 2, BaseTime: audioDTS}
	end := uint64(math.Round(float64(videoDTS+total) / videoTimescale * audioTimescale))
	a := audioDTS
	for a+aacFrame <= end || len(audio.Samples) == 0 {
		audio.Samples = append(audio.Samples, &fmp4.Sample{Duration: aacFrame, Payload: payload(96, msn, index, -1)})
		a += aacFrame
	}
	var buf seekablebuffer.Buffer
	part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{&video, &audio}}
	if err := part.Marshal(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes(), videoDTS + total, a
}

func payload(size int, msn uint64, index, frame int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, msn)
	if size >= 16 {
		binary.BigEndian.PutUint32(b[8:], uint32(index))
		binary.BigEndian.PutUint32(b[12:], uint32(frame))
	}
	return b
}
