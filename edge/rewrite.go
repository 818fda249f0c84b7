package edge

import (
	"bytes"
	"strings"
)

// appendQuery adds q (already encoded, without '?') to every URI a playlist names: URI lines,
// URI="..." attributes (EXT-X-MAP, EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-MEDIA) and
// #EXT-X-PREFETCH lines, except EXT-X-RENDITION-REPORT URIs, which get reportQ. Players do not
// carry a playback URL's query to child URIs themselves, so the token and the viewer session
// must be written in. A rendition report names another media playlist, and hls.js finds the
// report of a rendition by comparing its URI with the one the multivariant gave: reportQ is
// the query of the multivariant's URIs, so the two stay equal.
func appendQuery(playlist []byte, q, reportQ string) []byte {
	if q == "" && reportQ == "" {
		return playlist
	}
	out := make([]byte, 0, len(playlist)+len(playlist)/4)
	for len(playlist) > 0 {
		line := playlist
		if i := bytes.IndexByte(playlist, '\n'); i >= 0 {
			line, playlist = playlist[:i+1], playlist[i+1:]
		} else {
			playlist = nil
		}
		body := bytes.TrimRight(line, "\r\n")
		eol := line[len(body):]
		switch {
		case len(body) == 0:
			out = append(out, line...)
		case body[0] != '#':
			out = appendURI(out, body, q)
			out = append(out, eol...)
		case bytes.HasPrefix(body, []byte("#EXT-X-PREFETCH:")) || bytes.HasPrefix(body, []byte("#EXT-X-TWITCH-PREFETCH:")):
			i := bytes.IndexByte(body, ':') + 1
			out = append(out, body[:i]...)
			out = appendURI(out, body[i:], q)
			out = append(out, eol...)
		case bytes.HasPrefix(body, []byte("#EXT-X-RENDITION-REPORT:")):
			out = appendAttrURI(out, body, reportQ)
			out = append(out, eol...)
		default:
			out = appendAttrURI(out, body, q)
			out = append(out, eol...)
		}
	}
	return out
}

func appendURI(out, uri []byte, q string) []byte {
	out = append(out, uri...)
	if q == "" {
		return out
	}
	if bytes.IndexByte(uri, '?') >= 0 {
		out = append(out, '&')
	} else {
		out = append(out, '?')
	}
	return append(out, q...)
}

// appendAttrURI rewrites the URI="..." attribute of a tag line, if it has one.
func appendAttrURI(out, tag []byte, q string) []byte {
	start, end, ok := attrURI(tag)
	if !ok {
		return append(out, tag...)
	}
	out = append(out, tag[:start]...)
	out = appendURI(out, tag[start:end], q)
	return append(out, tag[end:]...)
}

// attrURI finds the value of the URI="..." attribute of a tag line: tag[start:end].
func attrURI(tag []byte) (start, end int, ok bool) {
	i := bytes.Index(tag, []byte(`URI="`))
	if i < 0 {
		return 0, 0, false
	}
	start = i + len(`URI="`)
	end = bytes.IndexByte(tag[start:], '"')
	if end < 0 {
		return 0, 0, false
	}
	return start, start + end, true
}

// isPlaylist tells playlists (rewritten, compressed) from media objects (passed through).
func isPlaylist(contentType string) bool {
	return strings.Contains(strings.ToLower(contentType), "mpegurl")
}
