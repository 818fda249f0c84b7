package playlist

import (
	"math"
	"strconv"
)

// Multivariant is a snapshot of a broadcast's renditions.
type Multivariant struct {
	// IndependentSegments is true when every segment of every rendition starts with an
	// independent frame.
	IndependentSegments bool
	// Variants is listed in order; the caller puts the highest rendition first, which is the
	// one players without bandwidth estimates start with.
	Variants []Variant
}

// Variant is one EXT-X-STREAM-INF entry.
type Variant struct {
	// URI is relative to the multivariant playlist, query included.
	URI              string
	Bandwidth        int
	AverageBandwidth int // omitted when zero
	Width, Height    int // omitted when zero (audio only)
	FrameRate        float64
	Codecs           string // omitted when empty
}

// VariantURI is the URI of a rendition's media playlist relative to the multivariant playlist
// "<playbackName>.m3u8", with query appended when not empty.
func VariantURI(playbackName, rendition, query string) string {
	b := make([]byte, 0, len(playbackName)+len(rendition)+len(MediaPlaylistName)+len(query)+3)
	b = append(b, playbackName...)
	b = append(b, '/')
	b = append(b, rendition...)
	b = append(b, '/')
	b = append(b, MediaPlaylistName...)
	return string(appendURI(b, nil, query))
}

// Append renders the multivariant playlist and appends it to dst. It carries no EXT-X-VERSION:
// none of its tags needs more than version 1.
func (m *Multivariant) Append(dst []byte) []byte {
	dst = append(dst, "#EXTM3U\n"...)
	if m.IndependentSegments {
		dst = append(dst, "#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	}
	for _, v := range m.Variants {
		dst = append(dst, "#EXT-X-STREAM-INF:BANDWIDTH="...)
		dst = strconv.AppendInt(dst, int64(v.Bandwidth), 10)
		if v.AverageBandwidth > 0 {
			dst = append(dst, ",AVERAGE-BANDWIDTH="...)
			dst = strconv.AppendInt(dst, int64(v.AverageBandwidth), 10)
		}
		if v.Width > 0 && v.Height > 0 {
			dst = append(dst, ",RESOLUTION="...)
			dst = strconv.AppendInt(dst, int64(v.Width), 10)
			dst = append(dst, 'x')
			dst = strconv.AppendInt(dst, int64(v.Height), 10)
		}
		if v.FrameRate > 0 && !math.IsInf(v.FrameRate, 0) {
			dst = append(dst, ",FRAME-RATE="...)
			dst = strconv.AppendFloat(dst, v.FrameRate, 'f', 3, 64)
		}
		if v.Codecs != "" && quotable(v.Codecs) {
			dst = append(dst, ",CODECS=\""...)
			dst = append(dst, v.Codecs...)
			dst = append(dst, '"')
		}
		dst = append(dst, '\n')
		dst = append(dst, v.URI...)
		dst = append(dst, '\n')
	}
	return dst
}
