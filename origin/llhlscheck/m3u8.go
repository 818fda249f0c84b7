package llhlscheck

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MediaPlaylist is a parsed media playlist, kept close to the text so checks can judge order
// and spelling as well as values.
type MediaPlaylist struct {
	Raw                   []byte
	Version               int
	TargetDuration        int // -1 when absent
	MediaSequence         uint64
	DiscontinuitySequence uint64
	ServerControl         map[string]string // attribute values as written (quotes kept)
	ServerControlLine     string
	HasPartInf            bool
	PartTarget            float64
	Skip                  *Skip
	Segments              []*Segment // complete segments, each with EXTINF and URI
	// Pending is the segment in progress: tags and parts after the last segment URI.
	Pending      *Segment
	PreloadHints []map[string]string
	Reports      []map[string]string
	Prefetch     []string
	DateRanges   []DateRange
	Ended        bool
	HasDefine    bool
	HasQueryDef  bool
	IFramesOnly  bool
	HasByteRange bool
	// OrderErrors lists segment tags found after the first EXT-X-PART of their segment (P16).
	OrderErrors []string
}

// Skip is EXT-X-SKIP.
type Skip struct {
	SkippedSegments    int
	HasRecentlyRemoved bool
	RecentlyRemoved    []string
}

// Segment is a media segment, complete or in progress.
type Segment struct {
	MSN           uint64
	Duration      float64
	URI           string
	PDT           time.Time
	Discontinuity bool
	Gap           bool
	Map           string // URI of the EXT-X-MAP in effect
	Parts         []*Part
	DateRanges    []string // IDs of EXT-X-DATERANGE tags written among its tags
}

// Part is an EXT-X-PART.
type Part struct {
	MSN         uint64
	Index       int
	Duration    float64
	URI         string
	Independent bool
	Gap         bool
}

// DateRange is an EXT-X-DATERANGE.
type DateRange struct {
	ID    string
	Start time.Time
	Attrs map[string]string
}

// ParseMedia parses a media playlist.
func ParseMedia(b []byte) (*MediaPlaylist, error) {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	if !strings.HasPrefix(text, "#EXTM3U") {
		return nil, errors.New("playlist does not start with #EXTM3U")
	}
	pl := &MediaPlaylist{Raw: b, TargetDuration: -1}
	cur := &Segment{}
	curMap := ""
	sawPart := false
	segTag := func(name string, n int) {
		if sawPart {
			pl.OrderErrors = append(pl.OrderErrors, fmt.Sprintf("line %d: %s after the segment's first EXT-X-PART", n, name))
		}
	}
	// Lines are cut one at a time and parts' attributes read without a map: the load client
	// parses a playlist per viewer per part, on the cores of the server it measures.
	rest := text
	for n := 1; ; n++ {
		line, tail, more := strings.Cut(rest, "\n")
		rest = tail
		line = strings.TrimSpace(line)
		name, value, _ := strings.Cut(line, ":")
		var err error
		switch {
		case line == "" || n == 1:
		case name == "#EXT-X-VERSION":
			pl.Version, err = strconv.Atoi(value)
		case name == "#EXT-X-TARGETDURATION":
			pl.TargetDuration, err = strconv.Atoi(value)
		case name == "#EXT-X-MEDIA-SEQUENCE":
			pl.MediaSequence, err = strconv.ParseUint(value, 10, 64)
		case name == "#EXT-X-DISCONTINUITY-SEQUENCE":
			pl.DiscontinuitySequence, err = strconv.ParseUint(value, 10, 64)
		case name == "#EXT-X-SERVER-CONTROL":
			pl.ServerControlLine = value
			pl.ServerControl, err = parseAttrs(value)
		case name == "#EXT-X-PART-INF":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				pl.HasPartInf = true
				pl.PartTarget, err = strconv.ParseFloat(a["PART-TARGET"], 64)
			}
		case name == "#EXT-X-SKIP":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				pl.Skip = &Skip{}
				pl.Skip.SkippedSegments, err = strconv.Atoi(a["SKIPPED-SEGMENTS"])
				if rr, ok := a["RECENTLY-REMOVED-DATERANGES"]; ok {
					pl.Skip.HasRecentlyRemoved = true
					if s := unquote(rr); s != "" {
						pl.Skip.RecentlyRemoved = strings.Split(s, "\t")
					}
				}
			}
		case name == "#EXT-X-MAP":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				segTag("EXT-X-MAP", n)
				curMap = unquote(a["URI"])
			}
		case line == "#EXT-X-DISCONTINUITY":
			segTag("EXT-X-DISCONTINUITY", n)
			cur.Discontinuity = true
		case name == "#EXT-X-PROGRAM-DATE-TIME":
			segTag("EXT-X-PROGRAM-DATE-TIME", n)
			cur.PDT, err = time.Parse(time.RFC3339Nano, value)
		case name == "#EXT-X-KEY":
			segTag("EXT-X-KEY", n)
		case line == "#EXT-X-GAP":
			cur.Gap = true
		case name == "#EXT-X-BYTERANGE":
			pl.HasByteRange = true
		case line == "#EXT-X-I-FRAMES-ONLY":
			pl.IFramesOnly = true
		case name == "#EXT-X-DEFINE":
			pl.HasDefine = true
			pl.HasQueryDef = pl.HasQueryDef || strings.Contains(value, "QUERYPARAM=")
		case name == "#EXT-X-DATERANGE":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				d := DateRange{ID: unquote(a["ID"]), Attrs: a}
				d.Start, err = time.Parse(time.RFC3339Nano, unquote(a["START-DATE"]))
				pl.DateRanges = append(pl.DateRanges, d)
				cur.DateRanges = append(cur.DateRanges, d.ID)
			}
		case name == "#EXT-X-PART":
			p := &Part{}
			var duration string
			err = eachAttr(value, func(name, val string) {
				switch name {
				case "URI":
					p.URI = unquote(val)
				case "INDEPENDENT":
					p.Independent = val == "YES"
				case "GAP":
					p.Gap = val == "YES"
				case "DURATION":
					duration = val
				}
			})
			if err == nil {
				p.Duration, err = strconv.ParseFloat(duration, 64)
				cur.Parts = append(cur.Parts, p)
				sawPart = true
			}
		case name == "#EXTINF":
			d, _, _ := strings.Cut(value, ",")
			cur.Duration, err = strconv.ParseFloat(d, 64)
		case name == "#EXT-X-PRELOAD-HINT":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				pl.PreloadHints = append(pl.PreloadHints, a)
			}
		case name == "#EXT-X-RENDITION-REPORT":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				pl.Reports = append(pl.Reports, a)
			}
		case name == "#EXT-X-PREFETCH" || name == "#EXT-X-TWITCH-PREFETCH":
			pl.Prefetch = append(pl.Prefetch, value)
		case line == "#EXT-X-ENDLIST":
			pl.Ended = true
		case strings.HasPrefix(line, "#"):
			// Other tags and comments.
		default:
			cur.URI = line
			cur.Map = curMap
			pl.Segments = append(pl.Segments, cur)
			cur = &Segment{}
			sawPart = false
		}
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		if !more {
			break
		}
	}
	if len(cur.Parts) > 0 {
		cur.Map = curMap
		cur.Duration = 0
		for _, p := range cur.Parts {
			cur.Duration += p.Duration
		}
		pl.Pending = cur
	}
	first := pl.MediaSequence
	if pl.Skip != nil {
		first += uint64(pl.Skip.SkippedSegments)
	}
	for i, s := range pl.all() {
		s.MSN = first + uint64(i)
		for j, p := range s.Parts {
			p.MSN, p.Index = s.MSN, j
		}
	}
	return pl, nil
}

// all lists the complete segments and the one in progress.
func (pl *MediaPlaylist) all() []*Segment {
	if pl.Pending == nil {
		return pl.Segments
	}
	return append(pl.Segments[:len(pl.Segments):len(pl.Segments)], pl.Pending)
}

// Parts lists every EXT-X-PART in order.
func (pl *MediaPlaylist) Parts() []*Part {
	var ps []*Part
	for _, s := range pl.all() {
		ps = append(ps, s.Parts...)
	}
	return ps
}

// LastPart is the newest listed part.
func (pl *MediaPlaylist) LastPart() (*Part, bool) {
	ps := pl.Parts()
	if len(ps) == 0 {
		return nil, false
	}
	return ps[len(ps)-1], true
}

// LastComplete is the MSN of the newest complete segment.
func (pl *MediaPlaylist) LastComplete() (uint64, bool) {
	if len(pl.Segments) == 0 {
		return 0, false
	}
	return pl.Segments[len(pl.Segments)-1].MSN, true
}

// MaxMSN is the highest MSN the playlist mentions, the segment in progress included.
func (pl *MediaPlaylist) MaxMSN() uint64 {
	if pl.Pending != nil {
		return pl.Pending.MSN
	}
	if m, ok := pl.LastComplete(); ok {
		return m
	}
	return pl.MediaSequence
}

// Duration is the length of the listed media: complete segments and parts in progress.
func (pl *MediaPlaylist) Duration() float64 {
	var d float64
	for _, s := range pl.all() {
		d += s.Duration
	}
	return d
}

// Segment returns the listed segment with the MSN, in progress or complete.
func (pl *MediaPlaylist) Segment(msn uint64) *Segment {
	for _, s := range pl.all() {
		if s.MSN == msn {
			return s
		}
	}
	return nil
}

// Multivariant is a parsed multivariant playlist.
type Multivariant struct {
	Raw                 []byte
	Version             int
	IndependentSegments bool
	Variants            []Variant
	// Renditions are the EXT-X-MEDIA entries; URI is unquoted (empty when the rendition is in
	// the variant's own stream).
	Renditions []Variant
}

// Variant is an EXT-X-STREAM-INF entry.
type Variant struct {
	URI   string
	Attrs map[string]string
}

// ParseMultivariant parses a multivariant playlist.
func ParseMultivariant(b []byte) (*Multivariant, error) {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	if !strings.HasPrefix(text, "#EXTM3U") {
		return nil, errors.New("playlist does not start with #EXTM3U")
	}
	m := &Multivariant{Raw: b}
	var pending map[string]string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		name, value, _ := strings.Cut(line, ":")
		var err error
		switch {
		case line == "" || n == 0:
		case name == "#EXT-X-VERSION":
			m.Version, err = strconv.Atoi(value)
		case line == "#EXT-X-INDEPENDENT-SEGMENTS":
			m.IndependentSegments = true
		case name == "#EXT-X-STREAM-INF":
			pending, err = parseAttrs(value)
		case name == "#EXT-X-MEDIA":
			var a map[string]string
			if a, err = parseAttrs(value); err == nil {
				m.Renditions = append(m.Renditions, Variant{URI: strings.Trim(a["URI"], `"`), Attrs: a})
			}
		case strings.HasPrefix(line, "#"):
		default:
			if pending == nil {
				return nil, fmt.Errorf("line %d: URI without EXT-X-STREAM-INF", n+1)
			}
			m.Variants = append(m.Variants, Variant{URI: line, Attrs: pending})
			pending = nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, line, err)
		}
	}
	return m, nil
}

// parseAttrs parses an attribute list. Values keep their quotes so that checks can tell a
// quoted-string from an enumerated string.
func parseAttrs(s string) (map[string]string, error) {
	m := make(map[string]string)
	if err := eachAttr(s, func(name, val string) { m[name] = val }); err != nil {
		return nil, err
	}
	return m, nil
}

// eachAttr calls f with each attribute of a list, values as written (quotes kept), and
// rejects a malformed list or a repeated name.
func eachAttr(s string, f func(name, val string)) error {
	var seen [12]string
	names := seen[:0]
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return fmt.Errorf("attribute list %q: missing name", s)
		}
		name := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return fmt.Errorf("attribute %s: unterminated quoted string", name)
			}
			val, s = s[:end+2], s[end+2:]
		} else if c := strings.IndexByte(s, ','); c >= 0 {
			val, s = s[:c], s[c:]
		} else {
			val, s = s, ""
		}
		for _, n := range names {
			if n == name {
				return fmt.Errorf("attribute %s repeated", name)
			}
		}
		names = append(names, name)
		f(name, val)
		if s != "" {
			if s[0] != ',' {
				return fmt.Errorf("attribute %s: junk after value", name)
			}
			s = s[1:]
		}
	}
	return nil
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// seconds parses a decimal-floating-point attribute; NaN when absent or malformed.
func seconds(attrs map[string]string, name string) float64 {
	v, ok := attrs[name]
	if !ok {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
