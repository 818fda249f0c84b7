package packager

import (
	"hash/fnv"
	"time"

	"glasscast/media"
	"glasscast/metadata"
)

// Ad breaks are placed on segment boundaries, not in the next part as text cues are. A
// segment starts on a key frame, and the transcoded ladder cuts every rendition's segments at
// the same input frames, so the start of the next segment is one media time in every
// rendition, a clean splice point (an IDR frame) for an ad-insertion server, and the place
// where segment tags (EXT-X-CUE-OUT, EXT-X-CUE-IN) may go before the first EXT-X-PART. Ad
// servers replace whole segments, so a break that began mid-segment would be cut there
// anyway. The break ends at the first segment boundary at or after its planned duration: the
// publisher's key frames decide it, and the splice in says how long the break really was.

// adState is a packager's ad breaks: requested and waiting for a segment start, or running.
type adState struct {
	waiting []media.Cue // guarded by Packager.mu, like cues
	open    *media.Cue  // the running break's splice out; owned by the writing goroutine
	outAt   time.Duration
}

// takeCues returns the cues that go into the part starting at media time start with program
// date time pdt: the text cues always, ad-break ends only when the part starts a segment.
func (p *Packager) takeCues(segmentStart bool, start time.Duration, pdt time.Time) []media.Cue {
	p.mu.Lock()
	c := p.cues
	p.cues = nil
	var waiting []media.Cue
	if segmentStart {
		waiting, p.ads.waiting = p.ads.waiting, nil
	}
	p.mu.Unlock()
	if !segmentStart {
		return c
	}
	if o := p.ads.open; o != nil && start-p.ads.outAt >= o.AdBreak.Planned-p.frameDur/2 {
		c = append(c, spliceIn(*o, start-p.ads.outAt, start, pdt))
		p.ads.open = nil
	}
	for _, w := range waiting {
		if p.ads.open != nil {
			continue // one break at a time; the control API refuses overlapping ones
		}
		out := spliceOut(w, start, pdt)
		p.ads.open, p.ads.outAt = &out, start
		c = append(c, out)
	}
	return c
}

func spliceEventID(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()
}

// ticks90k converts a media time to SCTE-35's 90 kHz clock without overflowing for long streams.
func ticks90k(d time.Duration) uint64 {
	return uint64(d/time.Second)*90000 + uint64(d%time.Second)*90000/uint64(time.Second)
}

func spliceOut(req media.Cue, start time.Duration, pdt time.Time) media.Cue {
	pts, dur := ticks90k(start), ticks90k(req.AdBreak.Planned)
	ab := *req.AdBreak
	ab.In, ab.Start = false, pdt
	ab.SCTE35 = metadata.SpliceInsert{EventID: spliceEventID(req.ID), OutOfNetwork: true, PTS: &pts, BreakDuration: &dur}.Encode()
	return media.Cue{ID: req.ID, Time: pdt, AdBreak: &ab}
}

func spliceIn(out media.Cue, length, start time.Duration, pdt time.Time) media.Cue {
	pts := ticks90k(start)
	ab := *out.AdBreak
	ab.In, ab.Duration = true, length
	ab.SCTE35 = metadata.SpliceInsert{EventID: spliceEventID(out.ID), PTS: &pts}.Encode()
	return media.Cue{ID: out.ID, Time: pdt, AdBreak: &ab}
}
