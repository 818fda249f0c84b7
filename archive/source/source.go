// Package source reads a live channel the way a player does, through the origin's HTTP
// interface: the multivariant playlist, each rendition's media playlist with blocking reloads,
// and every complete segment with its init segment. The archive records what it reads here.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"glasscast/media"
)

// Errors Next returns besides transport errors.
var (
	// ErrOffline means the origin does not hold the channel or rendition (404).
	ErrOffline = errors.New("channel offline at the origin")
)

// Bounds on what one response may hold, so a misbehaving origin cannot exhaust memory.
const (
	maxPlaylist = 2 << 20
	maxInit     = 1 << 20
	maxSegment  = 64 << 20
)

// Origin is an origin reachable over HTTP (or in process, through a loopback transport).
type Origin struct {
	Client  *http.Client
	BaseURL string // scheme and host, e.g. http://10.0.0.5:8080
	Region  string
	Account string
}

// Variant is one rendition listed by the multivariant playlist.
type Variant struct {
	Rendition     string // the origin's name, a path element
	Bandwidth     int
	Width, Height int
	FrameRate     float64
	Codecs        string
}

func (o *Origin) multivariantURL(channelID string) string {
	return strings.TrimSuffix(o.BaseURL, "/") + media.MultivariantPath(o.Region, o.Account, channelID)
}

// get fetches u whole, up to limit bytes.
func (o *Origin) get(ctx context.Context, u string, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode == http.StatusNotFound {
			return nil, resp.StatusCode, fmt.Errorf("get %s: %w", u, ErrOffline)
		}
		return nil, resp.StatusCode, fmt.Errorf("get %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("read %s: %w", u, err)
	}
	if int64(len(b)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("get %s: more than %d bytes", u, limit)
	}
	return b, resp.StatusCode, nil
}

// Variants reads the channel's multivariant playlist.
func (o *Origin) Variants(ctx context.Context, channelID string) ([]Variant, error) {
	u := o.multivariantURL(channelID)
	b, _, err := o.get(ctx, u, maxPlaylist)
	if err != nil {
		return nil, err
	}
	return ParseMultivariant(b)
}

// ParseMultivariant reads the variants of a multivariant playlist whose URIs have the origin's
// shape "<name>/<rendition>/index.m3u8".
func ParseMultivariant(b []byte) ([]Variant, error) {
	var mv playlist.Multivariant
	if err := mv.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("multivariant playlist: %w", err)
	}
	var out []Variant
	for _, v := range mv.Variants {
		u, err := url.Parse(v.URI)
		if err != nil {
			continue
		}
		els := strings.Split(u.Path, "/")
		if len(els) < 2 {
			continue
		}
		r := Variant{Rendition: els[len(els)-2], Bandwidth: v.Bandwidth, Codecs: strings.Join(v.Codecs, ",")}
		if r.Rendition == "" || r.Rendition == "." || r.Rendition == ".." {
			continue
		}
		if w, h, ok := strings.Cut(v.Resolution, "x"); ok {
			r.Width, _ = strconv.Atoi(w)
			r.Height, _ = strconv.Atoi(h)
		}
		if v.FrameRate != nil {
			r.FrameRate = *v.FrameRate
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("multivariant playlist lists no rendition")
	}
	return out, nil
}

// Segment is one complete segment with what a remuxer needs to place it.
type Segment struct {
	MSN      uint64
	InitURI  string
	Init     []byte
	Data     []byte
	PDT      time.Time
	Duration time.Duration
	// Discontinuity is the playlist's EXT-X-DISCONTINUITY on this segment.
	Discontinuity bool
	// AdMarkers are the playlist's ad-break tags in front of this segment.
	AdMarkers []string
}

// Gap reports segments that left the origin before they were read.
type Gap struct {
	From, To uint64 // [From, To) were missed
}

func (g *Gap) Error() string {
	return fmt.Sprintf("segments %d to %d left the origin unread", g.From, g.To-1)
}

// Live reports whether the channel's rendition is live at the origin: its media playlist has
// no EXT-X-ENDLIST. An origin keeps an ended broadcast's playlists for a while, until the
// channel's next broadcast replaces them, so a new stream is read only once this holds.
func (o *Origin) Live(ctx context.Context, channelID, rendition string) (bool, error) {
	f := o.Follow(channelID, rendition, 0)
	b, _, err := o.get(ctx, f.base, maxPlaylist)
	if err != nil {
		return false, err
	}
	p, err := ParseMedia(b)
	if err != nil {
		return false, err
	}
	return !p.Ended, nil
}
