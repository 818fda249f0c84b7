package bench

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// livePlaylist is what a viewer needs from one reload of a media playlist: its parts, the next
// part to block on, whether it ended. scanMedia fills it in place from the body, without copying
// the text or allocating per tag: the load client parses one playlist per viewer per part on the
// cores of the server it measures, and llhlscheck.ParseMedia (which keeps every tag for the
// conformance checks) cost a fifth of the client's CPU at 1,600 viewers.
type livePlaylist struct {
	ended      bool
	partTarget float64 // PART-TARGET; 0 without EXT-X-PART-INF
	parts      []livePart
	lastSeg    int // ordinal of the newest segment: the one in progress, else the last complete one
	// next is the part after the newest one listed, what hls.js blocks on next: the preload
	// hint when its URI names it (Glasscast's partMSN.INDEX.m4s), else the part after the
	// last listed one, else the first part of the segment after the last.
	nextMSN  uint64
	nextPart int
	hasNext  bool
	// skip is the _HLS_skip directive hls.js adds to its blocking reloads when the server
	// offers delta updates (CAN-SKIP-UNTIL): YES, or v2 with CAN-SKIP-DATERANGES; nil when
	// it offers none.
	skip []byte
}

// livePart is one EXT-X-PART. Its byte slices point into the body, valid until the viewer's
// next request.
type livePart struct {
	uri   []byte
	seg   int    // ordinal of its segment in this playlist (skipped segments counted)
	pdt   []byte // its segment's EXT-X-PROGRAM-DATE-TIME as written; nil when it has none
	start time.Duration
	dur   time.Duration
}

// end is when the part's media ends by program-date-time: its segment's date plus the parts
// before it and its own duration. Zero when the segment has no date.
func (p livePart) end() time.Time {
	if p.pdt == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, string(p.pdt))
	if err != nil {
		return time.Time{}
	}
	return t.Add(p.start + p.dur)
}

var (
	skipYes = []byte("YES")
	skipV2  = []byte("v2")
)

var errNotPlaylist = errors.New("playlist does not start with #EXTM3U")

// scanMedia reads a media playlist into pl, reusing its slices.
func scanMedia(b []byte, pl *livePlaylist) error {
	if !bytes.HasPrefix(b, []byte("#EXTM3U")) {
		return errNotPlaylist
	}
	*pl = livePlaylist{parts: pl.parts[:0]}
	var (
		seq      uint64 // EXT-X-MEDIA-SEQUENCE
		seg      int    // ordinal of the segment being read
		pdt      []byte
		off      time.Duration // the parts of this segment so far
		index    int           // next part index in this segment
		hintMSN  uint64
		hintPart int
		hasHint  bool
	)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != '#' { // a segment's URI ends it
			seg++
			pdt, off, index = nil, 0, 0
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		switch string(name) {
		case "#EXT-X-PART":
			d, err := strconv.ParseFloat(string(attr(value, "DURATION")), 64)
			if err != nil {
				return errors.New("EXT-X-PART without a DURATION")
			}
			dur := time.Duration(d * float64(time.Second))
			pl.parts = append(pl.parts, livePart{uri: unquote(attr(value, "URI")), seg: seg, pdt: pdt, start: off, dur: dur})
			off += dur
			index++
		case "#EXT-X-PROGRAM-DATE-TIME":
			pdt = value
		case "#EXT-X-MEDIA-SEQUENCE":
			seq, _ = strconv.ParseUint(string(value), 10, 64)
		case "#EXT-X-SKIP":
			n, _ := strconv.Atoi(string(attr(value, "SKIPPED-SEGMENTS")))
			seg += n
		case "#EXT-X-SERVER-CONTROL":
			if until, _ := strconv.ParseFloat(string(attr(value, "CAN-SKIP-UNTIL")), 64); until > 0 {
				pl.skip = skipYes
				if string(attr(value, "CAN-SKIP-DATERANGES")) == "YES" {
					pl.skip = skipV2
				}
			}
		case "#EXT-X-PART-INF":
			pl.partTarget, _ = strconv.ParseFloat(string(attr(value, "PART-TARGET")), 64)
		case "#EXT-X-ENDLIST":
			pl.ended = true
		case "#EXT-X-PRELOAD-HINT":
			if string(attr(value, "TYPE")) == "PART" {
				hintMSN, hintPart, hasHint = partName(unquote(attr(value, "URI")))
			}
		}
	}
	pl.lastSeg = seg - 1
	if index > 0 {
		pl.lastSeg = seg
	}
	switch {
	case hasHint:
		pl.nextMSN, pl.nextPart = hintMSN, hintPart
	case index > 0: // parts after the last segment URI: the segment in progress
		pl.nextMSN, pl.nextPart = seq+uint64(seg), index
	case seg > 0:
		pl.nextMSN, pl.nextPart = seq+uint64(seg), 0
	default:
		return nil
	}
	pl.hasNext = true
	return nil
}

// attr is the value of one attribute of an attribute list, as written (quotes kept).
func attr(list []byte, name string) []byte {
	for len(list) > 0 {
		eq := bytes.IndexByte(list, '=')
		if eq <= 0 {
			return nil
		}
		key := list[:eq]
		list = list[eq+1:]
		var val []byte
		if len(list) > 0 && list[0] == '"' {
			end := bytes.IndexByte(list[1:], '"')
			if end < 0 {
				return nil
			}
			val, list = list[:end+2], list[end+2:]
		} else if c := bytes.IndexByte(list, ','); c >= 0 {
			val, list = list[:c], list[c:]
		} else {
			val, list = list, nil
		}
		if string(key) == name {
			return val
		}
		if len(list) > 0 && list[0] == ',' {
			list = list[1:]
		}
	}
	return nil
}

func unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// partName reads Glasscast's part URI, part<MSN>.<index>.m4s (a query after it allowed).
func partName(uri []byte) (uint64, int, bool) {
	uri, _, _ = bytes.Cut(uri, []byte("?"))
	rest, ok := bytes.CutPrefix(uri, []byte("part"))
	if !ok {
		return 0, 0, false
	}
	rest, ok = bytes.CutSuffix(rest, []byte(".m4s"))
	if !ok {
		return 0, 0, false
	}
	m, i, ok := bytes.Cut(rest, []byte("."))
	if !ok {
		return 0, 0, false
	}
	msn, err1 := strconv.ParseUint(string(m), 10, 64)
	idx, err2 := strconv.Atoi(string(i))
	return msn, idx, err1 == nil && err2 == nil
}
