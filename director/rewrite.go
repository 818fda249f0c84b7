package director

import (
	"bytes"
	"net/url"
)

// absolute resolves every URI a multivariant playlist names (URI lines and URI="..."
// attributes) against base, the edge URL it was fetched from, so the player asks that edge
// for everything else whatever URL it loaded the playlist from.
func absolute(playlist []byte, base *url.URL) []byte {
	var out bytes.Buffer
	out.Grow(len(playlist) + len(playlist)/2)
	for _, line := range bytes.SplitAfter(playlist, []byte("\n")) {
		body := bytes.TrimRight(line, "\r\n")
		eol := line[len(body):]
		switch {
		case len(body) == 0:
		case body[0] != '#':
			body = []byte(resolve(base, string(body)))
		default:
			if i := bytes.Index(body, []byte(`URI="`)); i >= 0 {
				start := i + len(`URI="`)
				if end := bytes.IndexByte(body[start:], '"'); end >= 0 {
					end += start
					uri := resolve(base, string(body[start:end]))
					body = append(append(append([]byte{}, body[:start]...), uri...), body[end:]...)
				}
			}
		}
		out.Write(body)
		out.Write(eol)
	}
	return out.Bytes()
}

func resolve(base *url.URL, ref string) string {
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return base.ResolveReference(u).String()
}
