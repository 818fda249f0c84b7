package playlist

import (
	"encoding/hex"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// durationDecimals is the precision of every duration the playlists carry: 10 µs, well below a
// sample at 90 kHz or 48 kHz yet short enough to keep playlists small.
const durationDecimals = 5

// appendSeconds appends d in seconds, rounded to the nearest 10 µs, without trailing zeros.
func appendSeconds(dst []byte, d time.Duration) []byte {
	return appendFloat(dst, math.Round(d.Seconds()*1e5)/1e5)
}

// appendSecondsCeil appends d in seconds rounded up to 10 µs. Limits (PART-TARGET) are rounded
// up so that no duration rounded by appendSeconds can exceed them.
func appendSecondsCeil(dst []byte, d time.Duration) []byte {
	return appendFloat(dst, ceilSeconds(d))
}

func ceilSeconds(d time.Duration) float64 {
	return math.Ceil(math.Round(d.Seconds()*1e8)/1e3) / 1e5
}

func appendFloat(dst []byte, v float64) []byte {
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

// appendDate appends t as an ISO 8601 date with milliseconds in UTC, the form every player
// parses for EXT-X-PROGRAM-DATE-TIME and START-DATE.
func appendDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
}

// appendURI appends name followed by "?query" when query is not empty.
func appendURI(dst []byte, name []byte, query string) []byte {
	dst = append(dst, name...)
	if query != "" {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

// quotable reports whether s can be written as an HLS quoted-string: UTF-8 without double
// quotes, CR, LF or other control characters.
func quotable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '"' || r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
			return false
		}
	}
	return true
}

// appendClientValue appends an X- attribute value: a quoted string when s allows it, else a
// hexadecimal-sequence of its bytes, so that any text survives the playlist syntax.
func appendClientValue(dst []byte, s string) []byte {
	if quotable(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, "0x"...)
	return hex.AppendEncode(dst, []byte(s))
}

// SafeQuery makes a raw query string safe to append to playlist URIs: it percent-encodes every
// byte that is not allowed unencoded in a URI query (RFC 3986) and could break the playlist
// syntax, such as '"', spaces or control characters. Already encoded text is left as is.
func SafeQuery(raw string) string {
	clean := true
	for i := 0; i < len(raw); i++ {
		if !queryByte(raw[i]) {
			clean = false
			break
		}
	}
	if clean {
		return raw
	}
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, len(raw)+8)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if queryByte(c) {
			out = append(out, c)
			continue
		}
		out = append(out, '%', digits[c>>4], digits[c&15])
	}
	return string(out)
}

func queryByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '%', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/', '?':
		return true
	}
	return false
}
