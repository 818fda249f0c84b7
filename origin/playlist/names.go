// Package playlist renders the playlists a Glasscast origin serves: the multivariant playlist
// and LL-HLS media playlists with parts, server control, delta updates and IVS prefetch lines.
// It only formats: the origin hands it a snapshot of a rendition's window and gets bytes back.
package playlist

import (
	"strconv"
	"strings"
)

// MediaPlaylistName is the file name of every rendition's media playlist.
const MediaPlaylistName = "index.m3u8"

// ObjectKind tells which media object a file name names.
type ObjectKind int

// The media objects of a rendition.
const (
	KindInit ObjectKind = iota + 1
	KindSegment
	KindPart
)

// Object is a parsed object file name.
type Object struct {
	Kind       ObjectKind
	Generation int    // KindInit
	MSN        uint64 // KindSegment, KindPart
	Part       int    // KindPart
}

// InitName is the file name of a rendition's init segment of one generation.
func InitName(generation int) string { return string(AppendInitName(nil, generation)) }

// SegmentName is the file name of a segment; it is also the URI of its EXT-X-PREFETCH line.
func SegmentName(msn uint64) string { return string(AppendSegmentName(nil, msn)) }

// PartName is the file name of part index of segment msn.
func PartName(msn uint64, index int) string { return string(AppendPartName(nil, msn, index)) }

// AppendInitName appends InitName(generation) to dst.
func AppendInitName(dst []byte, generation int) []byte {
	dst = append(dst, "init"...)
	dst = strconv.AppendInt(dst, int64(generation), 10)
	return append(dst, ".mp4"...)
}

// AppendSegmentName appends SegmentName(msn) to dst.
func AppendSegmentName(dst []byte, msn uint64) []byte {
	dst = append(dst, "seg"...)
	dst = strconv.AppendUint(dst, msn, 10)
	return append(dst, ".m4s"...)
}

// AppendPartName appends PartName(msn, index) to dst.
func AppendPartName(dst []byte, msn uint64, index int) []byte {
	dst = append(dst, "part"...)
	dst = strconv.AppendUint(dst, msn, 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(index), 10)
	return append(dst, ".m4s"...)
}

// ParseObjectName is the inverse of InitName, SegmentName and PartName. It accepts only the
// canonical spelling (no sign, no leading zeros), so that one object has exactly one URL and
// caches never hold two copies of it.
func ParseObjectName(name string) (Object, bool) {
	if rest, ok := strings.CutPrefix(name, "init"); ok {
		stem, ok := strings.CutSuffix(rest, ".mp4")
		if !ok {
			return Object{}, false
		}
		g, ok := parseCanonical(stem)
		if !ok || g > 1<<31-1 {
			return Object{}, false
		}
		return Object{Kind: KindInit, Generation: int(g)}, true
	}
	if rest, ok := strings.CutPrefix(name, "seg"); ok {
		stem, ok := strings.CutSuffix(rest, ".m4s")
		if !ok {
			return Object{}, false
		}
		msn, ok := parseCanonical(stem)
		if !ok {
			return Object{}, false
		}
		return Object{Kind: KindSegment, MSN: msn}, true
	}
	if rest, ok := strings.CutPrefix(name, "part"); ok {
		stem, ok := strings.CutSuffix(rest, ".m4s")
		if !ok {
			return Object{}, false
		}
		a, b, ok := strings.Cut(stem, ".")
		if !ok {
			return Object{}, false
		}
		msn, ok1 := parseCanonical(a)
		idx, ok2 := parseCanonical(b)
		if !ok1 || !ok2 || idx > 1<<31-1 {
			return Object{}, false
		}
		return Object{Kind: KindPart, MSN: msn, Part: int(idx)}, true
	}
	return Object{}, false
}

// parseCanonical parses a decimal number written without sign or leading zeros.
func parseCanonical(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}
