package playlist

import (
	"math"
	"strconv"
	"time"
)

// Media is a snapshot of one rendition, enough to render its media playlist.
type Media struct {
	// TargetDuration is EXT-X-TARGETDURATION in whole seconds. It never changes while live.
	TargetDuration int
	// PartTarget is PART-TARGET. Zero renders a playlist of segments only (NORMAL latency):
	// no EXT-X-PART, PRELOAD-HINT or PREFETCH.
	PartTarget time.Duration
	// PartHoldBack is PART-HOLD-BACK in PART-TARGETs, applied to PART-TARGET as written so
	// that the ratio survives rounding. PART-HOLD-BACK must be the same in every rendition of
	// a stream, so the caller gives every rendition the largest part target of them all.
	// Below 2 (the spec's minimum), 2 is used; zero means 3, the spec's recommendation.
	PartHoldBack float64
	// CanSkipUntil is the Skip Boundary (CAN-SKIP-UNTIL); zero disables delta updates.
	CanSkipUntil time.Duration
	// CanSkipDateRanges advertises _HLS_skip=v2 (CAN-SKIP-DATERANGES=YES).
	CanSkipDateRanges bool
	// MediaSequence is the MSN of Segments[0].
	MediaSequence uint64
	// DiscontinuitySequence counts the discontinuities of segments removed from the playlist.
	DiscontinuitySequence uint64
	// Segments lists the window, oldest first. Only the last may be incomplete; it is then
	// listed by its parts alone (no EXTINF) and is the segment in progress.
	Segments []Segment
	// Reports describes the other renditions (EXT-X-RENDITION-REPORT).
	Reports []RenditionReport
	// RecentlyRemoved lists the IDs of date ranges that left the playlist within the skip
	// boundary, for _HLS_skip=v2 clients that must forget them.
	RecentlyRemoved []string
	// Ended appends EXT-X-ENDLIST; no hint or prefetch follows it.
	Ended bool
	// Query is appended as "?Query" to every URI (a viewer's token, say), already made safe
	// with SafeQuery and stripped of _HLS_ parameters.
	Query string
}

// Segment is a media segment of the window.
type Segment struct {
	MSN             uint64
	Duration        time.Duration // sum of its parts
	ProgramDateTime time.Time
	Discontinuity   bool
	// Gap lists the segment with EXT-X-GAP: the server does not have it (a publisher's
	// push was interrupted); players skip it.
	Gap            bool
	InitGeneration int
	Complete       bool
	Parts          []Part // in index order
	DateRanges     []DateRange
}

// Part is a partial segment; its index is its position in Segment.Parts.
type Part struct {
	Duration    time.Duration
	Independent bool
}

// DateRange is a timed-metadata event mirrored as EXT-X-DATERANGE.
type DateRange struct {
	ID    string // quotable (see SafeID)
	Start time.Time
	Text  string
	// Ad, when set, makes the date range one end of an ad break instead of text.
	Ad *AdBreak
}

// AdBreak is one end of an ad break, written as the HLS spec maps SCTE-35 (section 4.4.5.1.4
// of draft-pantos-hls-rfc8216bis): both ends share ID and START-DATE, the splice out carries
// SCTE35-OUT and PLANNED-DURATION, the splice in SCTE35-IN and the actual DURATION. For ad
// servers that read the older tags, EXT-X-CUE-OUT:DURATION= or EXT-X-CUE-IN follows it among
// the tags of the segment where the splice happens.
type AdBreak struct {
	In       bool
	Planned  time.Duration
	Duration time.Duration // on the splice in
	SCTE35   []byte        // splice_info_section
}

// RenditionReport is what EXT-X-RENDITION-REPORT says about another rendition.
type RenditionReport struct {
	Rendition string
	LastMSN   uint64
	LastPart  int // -1 when the report carries no LAST-PART (no parts, NORMAL latency)
}

// Skip selects a Playlist Delta Update (_HLS_skip).
type Skip int

// Delta update modes.
const (
	SkipNone                  Skip = iota
	SkipSegments                   // _HLS_skip=YES
	SkipSegmentsAndDateRanges      // _HLS_skip=v2
)

// PartWindow returns how far back from the end of the playlist parts stay listed: three
// target durations (the spec's SHOULD).
func (m *Media) PartWindow() time.Duration {
	return 3 * time.Duration(m.TargetDuration) * time.Second
}

// lowLatency reports whether parts are listed.
func (m *Media) lowLatency() bool { return m.PartTarget > 0 }

// NextPart is the part the preload hint names: the one after the last listed part.
func (m *Media) NextPart() (msn uint64, index int, ok bool) {
	if len(m.Segments) == 0 {
		return 0, 0, false
	}
	last := &m.Segments[len(m.Segments)-1]
	if last.Complete {
		return last.MSN + 1, 0, true
	}
	return last.MSN, len(last.Parts), true
}

// Skipped returns how many leading segments a delta update replaces with EXT-X-SKIP: those
// whose end lies at least CanSkipUntil before the end of the playlist (parts of the segment in
// progress included). A client asks for a delta only while its copy is younger than half the
// boundary, so it holds every segment skipped this way.
func (m *Media) Skipped() int {
	if m.CanSkipUntil <= 0 || m.Ended {
		return 0
	}
	var total time.Duration
	for i := range m.Segments {
		total += m.Segments[i].Duration
	}
	n := 0
	var end time.Duration
	for i := range m.Segments {
		end += m.Segments[i].Duration
		if !m.Segments[i].Complete || total-end < m.CanSkipUntil {
			break
		}
		n++
	}
	return n
}

// Version is the EXT-X-VERSION a playlist rendered with skip needs, and no more (section 8 of
// the draft): 6 for EXT-X-MAP in a playlist that is not I-frames only, 9 for EXT-X-SKIP, 10
// when EXT-X-SKIP stands for date ranges too. No LL-HLS tag raises the version by itself.
func Version(skip Skip) int {
	switch skip {
	case SkipSegmentsAndDateRanges:
		return 10
	case SkipSegments:
		return 9
	default:
		return 6
	}
}

// Append renders the media playlist, or the delta update skip asks for, and appends it to dst.
// A delta update is the full playlist with its oldest segments replaced by one EXT-X-SKIP tag;
// every other tag stays, including the EXT-X-MAP in effect and, unless skip is
// SkipSegmentsAndDateRanges, the date ranges of skipped segments.
func (m *Media) Append(dst []byte, skip Skip) []byte {
	if skip == SkipSegmentsAndDateRanges && !m.CanSkipDateRanges {
		skip = SkipSegments
	}
	skipped := 0
	if skip != SkipNone {
		skipped = m.Skipped()
	}
	// With nothing old enough to skip, the full playlist is the answer: it is always valid,
	// and it needs a lower EXT-X-VERSION than an EXT-X-SKIP tag.
	if skipped == 0 {
		skip = SkipNone
	}
	delta := skip != SkipNone

	dst = append(dst, "#EXTM3U\n#EXT-X-VERSION:"...)
	dst = strconv.AppendInt(dst, int64(Version(skip)), 10)
	dst = append(dst, "\n#EXT-X-TARGETDURATION:"...)
	dst = strconv.AppendInt(dst, int64(m.TargetDuration), 10)
	dst = append(dst, "\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"...)
	if m.CanSkipUntil > 0 {
		dst = append(dst, ",CAN-SKIP-UNTIL="...)
		dst = appendSeconds(dst, m.CanSkipUntil)
		if m.CanSkipDateRanges {
			dst = append(dst, ",CAN-SKIP-DATERANGES=YES"...)
		}
	}
	if m.lowLatency() {
		factor := m.PartHoldBack
		if factor == 0 {
			factor = 3
		}
		holdBack := max(factor, 2) * ceilSeconds(m.PartTarget)
		dst = append(dst, ",PART-HOLD-BACK="...)
		dst = appendFloat(dst, math.Ceil(math.Round(holdBack*1e8)/1e3)/1e5)
		dst = append(dst, "\n#EXT-X-PART-INF:PART-TARGET="...)
		dst = appendSecondsCeil(dst, m.PartTarget)
	}
	dst = append(dst, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	dst = strconv.AppendUint(dst, m.MediaSequence, 10)
	dst = append(dst, '\n')
	if m.DiscontinuitySequence > 0 {
		dst = append(dst, "#EXT-X-DISCONTINUITY-SEQUENCE:"...)
		dst = strconv.AppendUint(dst, m.DiscontinuitySequence, 10)
		dst = append(dst, '\n')
	}
	if delta {
		dst = append(dst, "#EXT-X-SKIP:SKIPPED-SEGMENTS="...)
		dst = strconv.AppendInt(dst, int64(skipped), 10)
		if skip == SkipSegmentsAndDateRanges {
			// REQUIRED when the client asked to skip date ranges, even when empty.
			dst = append(dst, ",RECENTLY-REMOVED-DATERANGES=\""...)
			for i, id := range m.RecentlyRemoved {
				if i > 0 {
					dst = append(dst, '\t')
				}
				dst = append(dst, id...)
			}
			dst = append(dst, '"')
		}
		dst = append(dst, '\n')
		if skip == SkipSegments {
			for i := 0; i < skipped; i++ {
				dst = m.appendDateRanges(dst, &m.Segments[i], false)
			}
		}
	}

	partsFrom := m.partsFrom()
	var name []byte
	gen := -1
	for i := skipped; i < len(m.Segments); i++ {
		s := &m.Segments[i]
		// Tags that apply to the segment come before its first EXT-X-PART.
		if s.Discontinuity {
			dst = append(dst, "#EXT-X-DISCONTINUITY\n"...)
		}
		if s.InitGeneration != gen {
			gen = s.InitGeneration
			dst = append(dst, "#EXT-X-MAP:URI=\""...)
			name = AppendInitName(name[:0], gen)
			dst = appendURI(dst, name, m.Query)
			dst = append(dst, "\"\n"...)
		}
		dst = append(dst, "#EXT-X-PROGRAM-DATE-TIME:"...)
		dst = appendDate(dst, s.ProgramDateTime)
		dst = append(dst, '\n')
		dst = m.appendDateRanges(dst, s, true)
		if m.lowLatency() && i >= partsFrom {
			for j := range s.Parts {
				dst = append(dst, "#EXT-X-PART:DURATION="...)
				dst = appendSeconds(dst, s.Parts[j].Duration)
				dst = append(dst, ",URI=\""...)
				name = AppendPartName(name[:0], s.MSN, j)
				dst = appendURI(dst, name, m.Query)
				dst = append(dst, '"')
				if s.Parts[j].Independent {
					dst = append(dst, ",INDEPENDENT=YES"...)
				}
				dst = append(dst, '\n')
			}
		}
		if s.Complete {
			if s.Gap {
				dst = append(dst, "#EXT-X-GAP\n"...)
			}
			dst = append(dst, "#EXTINF:"...)
			dst = appendSeconds(dst, s.Duration)
			dst = append(dst, ",\n"...)
			name = AppendSegmentName(name[:0], s.MSN)
			dst = appendURI(dst, name, m.Query)
			dst = append(dst, '\n')
		}
	}

	if m.lowLatency() && !m.Ended {
		if msn, idx, ok := m.NextPart(); ok {
			dst = append(dst, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""...)
			name = AppendPartName(name[:0], msn, idx)
			dst = appendURI(dst, name, m.Query)
			dst = append(dst, "\"\n"...)
		}
	}
	for _, r := range m.Reports {
		dst = append(dst, "#EXT-X-RENDITION-REPORT:URI=\"../"...)
		name = append(append(append(name[:0], r.Rendition...), '/'), MediaPlaylistName...)
		dst = appendURI(dst, name, m.Query)
		dst = append(dst, "\",LAST-MSN="...)
		dst = strconv.AppendUint(dst, r.LastMSN, 10)
		if r.LastPart >= 0 {
			dst = append(dst, ",LAST-PART="...)
			dst = strconv.AppendInt(dst, int64(r.LastPart), 10)
		}
		dst = append(dst, '\n')
	}
	if m.lowLatency() && !m.Ended {
		// Amazon's IVS player reads no LL-HLS tag; these lines switch it to streaming the
		// segment in progress and the next one as their parts arrive.
		if msn, _, ok := m.NextPart(); ok {
			for k := uint64(0); k < 2; k++ {
				dst = append(dst, "#EXT-X-PREFETCH:"...)
				name = AppendSegmentName(name[:0], msn+k)
				dst = appendURI(dst, name, m.Query)
				dst = append(dst, '\n')
			}
		}
	}
	if m.Ended {
		dst = append(dst, "#EXT-X-ENDLIST\n"...)
	}
	return dst
}

// partsFrom returns the index of the first segment whose parts are listed: parts stay in the
// playlist while their segment starts within PartWindow of the end, and leave a whole segment
// at a time so that the segment's own tags always precede its first EXT-X-PART.
func (m *Media) partsFrom() int {
	var total time.Duration
	for i := range m.Segments {
		total += m.Segments[i].Duration
	}
	limit := m.PartWindow()
	var start time.Duration
	for i := range m.Segments {
		if total-start <= limit {
			return i
		}
		start += m.Segments[i].Duration
	}
	return len(m.Segments) - 1
}

// appendDateRanges writes a segment's date ranges and, with cues (the segment itself follows,
// not an EXT-X-SKIP), the EXT-X-CUE-OUT/IN tags of its ad-break ends.
func (m *Media) appendDateRanges(dst []byte, s *Segment, cues bool) []byte {
	for _, d := range s.DateRanges {
		dst = append(dst, "#EXT-X-DATERANGE:ID=\""...)
		dst = append(dst, d.ID...)
		dst = append(dst, "\",START-DATE=\""...)
		dst = appendDate(dst, d.Start)
		dst = append(dst, '"')
		if a := d.Ad; a != nil {
			dst = append(dst, ",PLANNED-DURATION="...)
			dst = appendSeconds(dst, a.Planned)
			if a.In {
				dst = append(dst, ",DURATION="...)
				dst = appendSeconds(dst, a.Duration)
				dst = append(dst, ",SCTE35-IN=0x"...)
			} else {
				dst = append(dst, ",SCTE35-OUT=0x"...)
			}
			dst = appendUpperHex(dst, a.SCTE35)
		} else {
			dst = append(dst, ",X-TEXT="...)
			dst = appendClientValue(dst, d.Text)
		}
		dst = append(dst, '\n')
	}
	if !cues {
		return dst
	}
	for _, d := range s.DateRanges {
		switch a := d.Ad; {
		case a == nil:
		case a.In:
			dst = append(dst, "#EXT-X-CUE-IN\n"...)
		default:
			dst = append(dst, "#EXT-X-CUE-OUT:DURATION="...)
			dst = appendSeconds(dst, a.Planned)
			dst = append(dst, '\n')
		}
	}
	return dst
}

// appendUpperHex writes a hexadecimal-sequence's digits, which the spec gives as 0-9 and A-F.
func appendUpperHex(dst, b []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}

// SafeID turns a cue ID into a quotable date-range ID: characters a quoted-string cannot hold
// become '_', and an empty ID becomes fallback.
func SafeID(id, fallback string) string {
	if id == "" {
		return fallback
	}
	if quotable(id) && !containsTab(id) {
		return id
	}
	b := []byte(id)
	for i, c := range b {
		if c == '"' || c < 0x20 || c == 0x7f || c >= 0x80 {
			b[i] = '_'
		}
	}
	return string(b)
}

// containsTab matters because RECENTLY-REMOVED-DATERANGES separates IDs with tabs.
func containsTab(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\t' {
			return true
		}
	}
	return false
}
