package origin

import (
	"cmp"
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"glasscast/media"
	"glasscast/origin/playlist"
)

// errTimeout is returned by await when the deadline passes first.
var errTimeout = errors.New("origin: wait timed out")

// directives are a playlist request's delivery directives (_HLS_ parameters) and the rest of
// its query, which every child URI carries on (D13: a viewer's token, say).
type directives struct {
	msn     uint64
	hasMSN  bool
	part    int
	hasPart bool
	skip    playlist.Skip
	query   string
}

// parseDirectives splits a raw query. The passthrough part keeps its original spelling and
// order, so that every origin and edge renders byte-identical playlists for one URL.
func parseDirectives(raw string) (directives, error) {
	var d directives
	var keep []string
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err := url.QueryUnescape(k)
		if err != nil || !strings.HasPrefix(key, "_HLS_") {
			keep = append(keep, kv)
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return d, errors.New("malformed " + key)
		}
		switch key {
		case "_HLS_msn":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || d.hasMSN {
				return d, errors.New("malformed or repeated _HLS_msn")
			}
			d.msn, d.hasMSN = n, true
		case "_HLS_part":
			n, err := strconv.ParseUint(val, 10, 31)
			if err != nil || d.hasPart {
				return d, errors.New("malformed or repeated _HLS_part")
			}
			d.part, d.hasPart = int(n), true
		case "_HLS_skip":
			switch val {
			case "YES":
				d.skip = playlist.SkipSegments
			case "v2":
				d.skip = playlist.SkipSegmentsAndDateRanges
			}
		}
		// Other _HLS_ names are reserved for future directives: ignored, never passed on.
	}
	d.query = playlist.SafeQuery(strings.Join(keep, "&"))
	return d, nil
}

func (o *Origin) serveMultivariant(w http.ResponseWriter, r *http.Request, t media.PlaybackTarget) {
	d, _ := parseDirectives(r.URL.RawQuery)
	b := o.lookup(t.ChannelID)
	if b == nil {
		// Amazon's IVS player reads a 404 here as "channel offline" (ErrorNotAvailable).
		fail(w, http.StatusNotFound, cacheOffline, "channel offline")
		return
	}
	buf := o.bufs.get()
	defer o.bufs.put(buf)
	b.mu.RLock()
	out, ok := b.appendMultivariant((*buf)[:0], media.PlaybackName(t.Region, t.Account, t.ChannelID), d.query)
	b.mu.RUnlock()
	*buf = out
	if !ok {
		fail(w, http.StatusNotFound, cacheOffline, "channel offline")
		return
	}
	o.writePlaylist(w, r, out, cacheMultivariant)
}

// appendMultivariant renders the multivariant playlist; false until some rendition has
// something to play. Called with b.mu held.
func (b *broadcast) appendMultivariant(dst []byte, name, query string) ([]byte, bool) {
	rs := slices.Clone(b.order)
	slices.SortStableFunc(rs, func(x, y *rendition) int {
		return cmp.Or(
			cmp.Compare(y.desc.Bandwidth, x.desc.Bandwidth),
			cmp.Compare(y.desc.Height, x.desc.Height),
			cmp.Compare(x.desc.Name, y.desc.Name))
	})
	m := playlist.Multivariant{IndependentSegments: true}
	content := false
	for _, r := range rs {
		content = content || r.hasContent(b.low())
		m.IndependentSegments = m.IndependentSegments && r.allIndependent
		// BANDWIDTH is the peak segment bitrate; measured sizes keep it honest when the
		// declared value is low, and it never goes down during the broadcast.
		bw := max(r.desc.Bandwidth, int(math.Ceil(r.peakBPS)))
		avg := int(math.Ceil(r.averageBPS()))
		if avg == 0 {
			avg = r.desc.AverageBandwidth
		}
		m.Variants = append(m.Variants, playlist.Variant{
			URI:              playlist.VariantURI(name, r.desc.Name, query),
			Bandwidth:        bw,
			AverageBandwidth: min(avg, bw),
			Width:            r.desc.Width,
			Height:           r.desc.Height,
			FrameRate:        r.desc.FrameRate,
			Codecs:           r.desc.Codecs,
		})
	}
	if !content {
		return dst, false
	}
	return m.Append(dst), true
}

func (o *Origin) serveMedia(w http.ResponseWriter, r *http.Request, t media.PlaybackTarget) {
	start := time.Now()
	d, err := parseDirectives(r.URL.RawQuery)
	if d.hasMSN {
		o.stats.blocking.Add(1)
	} else {
		o.stats.playlists.Add(1)
	}
	if err != nil {
		fail(w, http.StatusBadRequest, cacheError, err.Error())
		return
	}
	b := o.lookup(t.ChannelID)
	if b == nil {
		fail(w, http.StatusNotFound, cacheError, "channel offline")
		return
	}
	b.mu.RLock()
	rd := b.renditions[t.Rendition]
	var bad string
	if rd != nil && !b.ended {
		// With EXT-X-ENDLIST every directive is ignored (D5), so only a live playlist judges them.
		bad = b.checkDirectives(rd, d)
	}
	b.mu.RUnlock()
	if rd == nil {
		fail(w, http.StatusNotFound, cacheError, "no such rendition")
		return
	}
	if bad != "" {
		fail(w, http.StatusBadRequest, cacheError, bad)
		return
	}

	var ready func() bool
	switch {
	case d.hasMSN && d.hasPart:
		ready = func() bool { return rd.reached(d.msn, d.part) }
	case d.hasMSN:
		// A segment counts once complete, not when it starts (D1).
		ready = func() bool { c, ok := rd.lastComplete(); return ok && c >= d.msn }
	default:
		ready = func() bool { return rd.hasContent(b.low()) }
	}
	ctx := r.Context()
	if err := b.await(ctx, rd, start.Add(b.blockLimit()), ready); err != nil {
		if ctx.Err() == nil {
			fail(w, http.StatusServiceUnavailable, cacheError, "playlist not updated in time")
		}
		return
	}
	if d.hasMSN {
		b.awaitReports(ctx, rd)
	}

	buf := o.bufs.get()
	defer o.bufs.put(buf)
	b.mu.RLock()
	*buf = b.appendMedia((*buf)[:0], rd, d.skip, d.query)
	b.mu.RUnlock()
	cc := cachePlaylist
	if d.hasMSN {
		cc = cacheBlocking
	}
	o.writePlaylist(w, r, *buf, cc)
}

// checkDirectives returns why a live playlist request must get 400, or "". Called with b.mu
// held.
func (b *broadcast) checkDirectives(rd *rendition, d directives) string {
	switch {
	case d.hasPart && !d.hasMSN:
		return "_HLS_part without _HLS_msn" // D7
	case d.hasPart && !b.low():
		return "_HLS_part on a playlist without parts"
	case !d.hasMSN:
		return ""
	}
	lastMSN, lastPart, ok := rd.last()
	if !ok {
		return "" // nothing published yet: no basis to judge, wait like any request
	}
	// D6: more than two segments past the last Media Segment of the playlist (the last
	// complete one), or more parts ahead than the Advance Part Limit.
	ref := lastMSN
	if c, ok := rd.lastComplete(); ok {
		ref = c
	}
	if d.msn > ref+2 {
		return "_HLS_msn too far ahead"
	}
	if !d.hasPart || d.msn < lastMSN {
		return ""
	}
	var ahead int
	if d.msn == lastMSN {
		ahead = d.part - lastPart
	} else {
		per := rd.partsPerSegment(b.td, b.stream.PartTarget)
		ahead = max(per-1-lastPart, 0) + int(d.msn-lastMSN-1)*per + d.part + 1
	}
	if float64(ahead) > advancePartLimit(b.stream.PartTarget) {
		return "_HLS_part too far ahead"
	}
	return ""
}

// advancePartLimit is how many parts ahead of the last a request may ask for: three seconds'
// worth when parts are shorter than a second, else three.
func advancePartLimit(partTarget time.Duration) float64 {
	if s := partTarget.Seconds(); s > 0 && s < 1 {
		return 3 / s
	}
	return 3
}

// await blocks until ready holds, the broadcast ends, the deadline passes (errTimeout) or ctx
// is done. It holds no lock while it sleeps; a part of the rendition wakes it to look again.
func (b *broadcast) await(ctx context.Context, rd *rendition, deadline time.Time, ready func() bool) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			b.o.stats.blocked.Add(-1)
		}
	}()
	for {
		b.mu.RLock()
		done := b.ended || b.freed || ready()
		changed := rd.changed
		b.mu.RUnlock()
		if done {
			return nil
		}
		if timer == nil {
			wait := time.Until(deadline)
			if wait <= 0 {
				return errTimeout
			}
			timer = time.NewTimer(wait)
			b.o.stats.blocked.Add(1)
		}
		select {
		case <-changed:
		case <-timer.C:
			return errTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// awaitReports gives renditions one part behind rd up to one part target to catch up, so that
// the rendition reports of a blocking response are as current as the playlist itself: the
// packager publishes each part to the renditions one after another. A rendition further behind
// is reported as it is rather than delaying every response.
func (b *broadcast) awaitReports(ctx context.Context, rd *rendition) {
	if !b.low() {
		return
	}
	b.mu.RLock()
	msn, part, ok := rd.last()
	others := b.order
	b.mu.RUnlock()
	if !ok {
		return
	}
	deadline := time.Now().Add(b.stream.PartTarget)
	for _, other := range others {
		if other == rd {
			continue
		}
		b.mu.RLock()
		om, op, has := other.last()
		b.mu.RUnlock()
		if !has || !(om == msn && op >= part-1 || om+1 == msn && part == 0) {
			continue
		}
		_ = b.await(ctx, other, deadline, func() bool { return other.reached(msn, part) })
	}
}

// appendMedia renders rd's media playlist. Called with b.mu held.
func (b *broadcast) appendMedia(dst []byte, rd *rendition, skip playlist.Skip, query string) []byte {
	m := playlist.Media{
		TargetDuration:        int(b.td / time.Second),
		CanSkipUntil:          b.skipUntil(),
		CanSkipDateRanges:     b.o.cfg.DateRanges && b.skipUntil() > 0,
		DiscontinuitySequence: rd.discSeq,
		Ended:                 b.ended,
		Query:                 query,
	}
	if b.low() {
		m.PartTarget = b.stream.PartTarget
		// One part target for the whole stream makes PART-HOLD-BACK equal in every rendition.
		m.PartHoldBack = b.o.cfg.PartHoldBack
	}
	m.Segments = make([]playlist.Segment, 0, len(rd.segs))
	for _, s := range rd.segs {
		if !s.complete && !b.low() {
			continue
		}
		ps := playlist.Segment{
			MSN:             s.msn,
			Duration:        s.duration,
			ProgramDateTime: s.pdt,
			Discontinuity:   s.discontinuity,
			Gap:             s.gap,
			InitGeneration:  s.generation,
			Complete:        s.complete,
			Parts:           s.meta,
		}
		if b.o.cfg.DateRanges {
			ps.DateRanges = s.cues
		} else {
			ps.DateRanges = adBreaks(s.cues) // ad markers are shown whatever DateRanges says
		}
		m.Segments = append(m.Segments, ps)
	}
	if len(m.Segments) > 0 {
		m.MediaSequence = m.Segments[0].MSN
	}
	if b.o.cfg.DateRanges {
		for _, c := range rd.removed {
			m.RecentlyRemoved = append(m.RecentlyRemoved, c.id)
		}
	}
	for _, other := range b.order {
		if other == rd {
			continue
		}
		if b.low() {
			if msn, part, ok := other.last(); ok {
				m.Reports = append(m.Reports, playlist.RenditionReport{Rendition: other.desc.Name, LastMSN: msn, LastPart: part})
			}
		} else if msn, ok := other.lastComplete(); ok {
			m.Reports = append(m.Reports, playlist.RenditionReport{Rendition: other.desc.Name, LastMSN: msn, LastPart: -1})
		}
	}
	return m.Append(dst, skip)
}

// adBreaks returns the ad-break ends among a segment's cues.
func adBreaks(cues []playlist.DateRange) []playlist.DateRange {
	var ads []playlist.DateRange
	for _, c := range cues {
		if c.Ad != nil {
			ads = append(ads, c)
		}
	}
	return ads
}
