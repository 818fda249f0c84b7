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

	"glasscast/media"
)

// Listed is a complete segment as a media playlist lists it.
type Listed struct {
	MSN           uint64
	URI           string
	InitURI       string
	Duration      time.Duration
	PDT           time.Time
	Discontinuity bool
	// AdMarkers are the ad-break tags in front of the segment (EXT-X-DATERANGE with SCTE35-OUT
	// or SCTE35-IN, EXT-X-CUE-OUT, EXT-X-CUE-IN), as the origin wrote them.
	AdMarkers []string
}

// MediaPlaylist is what the archive reads from a media playlist: the complete segments and
// whether the stream ended. The segment in progress (listed by its parts only) is left out.
type MediaPlaylist struct {
	Segments []Listed
	Ended    bool
}

// ParseMedia reads a media playlist. It keeps the EXT-X-MAP of each segment, which changes
// when a publisher reconnects with new codec parameters (gohlslib keeps only the last one).
func ParseMedia(b []byte) (*MediaPlaylist, error) {
	s := string(b)
	if !strings.HasPrefix(s, "#EXTM3U") {
		return nil, errors.New("media playlist: no #EXTM3U header")
	}
	p := &MediaPlaylist{}
	var (
		msn     uint64
		initURI string
		cur     Listed
		inf     bool
	)
	for len(s) > 0 {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			v, err := strconv.ParseUint(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 63)
			if err != nil {
				return nil, fmt.Errorf("media playlist: %q: %w", line, err)
			}
			msn = v
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			u, ok := attr(line[len("#EXT-X-MAP:"):], "URI")
			if !ok {
				return nil, fmt.Errorf("media playlist: %q has no URI", line)
			}
			initURI = u
		case line == "#EXT-X-DISCONTINUITY":
			cur.Discontinuity = true
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			t, err := time.Parse(time.RFC3339Nano, line[len("#EXT-X-PROGRAM-DATE-TIME:"):])
			if err != nil {
				return nil, fmt.Errorf("media playlist: %q: %w", line, err)
			}
			cur.PDT = t
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(line[len("#EXTINF:"):], ",")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 3600 {
				return nil, fmt.Errorf("media playlist: bad %q", line)
			}
			cur.Duration = time.Duration(f * float64(time.Second))
			inf = true
		case line == "#EXT-X-ENDLIST":
			p.Ended = true
		case strings.HasPrefix(line, "#EXT-X-CUE-OUT"), line == "#EXT-X-CUE-IN",
			strings.HasPrefix(line, "#EXT-X-DATERANGE:") && strings.Contains(line, ",SCTE35-"):
			cur.AdMarkers = append(cur.AdMarkers, line)
		case strings.HasPrefix(line, "#"):
			// Parts, hints, prefetch lines, reports, date ranges: not needed to record.
		default:
			if !inf {
				return nil, fmt.Errorf("media playlist: URI %q without EXTINF", line)
			}
			cur.MSN, cur.URI, cur.InitURI = msn, line, initURI
			p.Segments = append(p.Segments, cur)
			msn++
			cur, inf = Listed{}, false
		}
	}
	return p, nil
}

// attr returns a quoted or plain attribute of a tag's attribute list.
func attr(list, name string) (string, bool) {
	for list != "" {
		var k, v string
		k, list, _ = strings.Cut(list, "=")
		k = strings.TrimSpace(k)
		if strings.HasPrefix(list, "\"") {
			end := strings.IndexByte(list[1:], '"')
			if end < 0 {
				return "", false
			}
			v, list = list[1:1+end], list[2+end:]
			list = strings.TrimPrefix(list, ",")
		} else {
			v, list, _ = strings.Cut(list, ",")
		}
		if k == name {
			return v, true
		}
	}
	return "", false
}

// Follower reads one rendition's complete segments in order.
type Follower struct {
	o       *Origin
	base    string // URL of the media playlist
	next    uint64
	started bool
	queue   []Listed
	ended   bool
	initURI string
	init    []byte
}

// Follow starts reading a rendition at segment from, or at the oldest segment the origin
// still holds when from is 0.
func (o *Origin) Follow(channelID, rendition string, from uint64) *Follower {
	name := media.PlaybackName(o.Region, o.Account, channelID)
	base := strings.TrimSuffix(o.BaseURL, "/") + media.PlaybackPrefix + name + "/" + url.PathEscape(rendition) + "/index.m3u8"
	return &Follower{o: o, base: base, next: from, started: from != 0}
}

// NextMSN is the sequence number of the segment Next returns next.
func (f *Follower) NextMSN() uint64 { return f.next }

// Next returns the next complete segment. It blocks (with blocking playlist reloads) until the
// origin completes it. It returns io.EOF after the last segment of an ended stream, a *Gap
// (after which it continues with the first segment still held) when segments left the origin
// unread, ErrOffline when the origin no longer holds the channel, and transport errors, after
// which it may be called again.
func (f *Follower) Next(ctx context.Context) (*Segment, error) {
	for {
		for len(f.queue) > 0 && f.queue[0].MSN < f.next {
			f.queue = f.queue[1:]
		}
		if len(f.queue) > 0 {
			l := f.queue[0]
			if l.MSN > f.next {
				g := &Gap{From: f.next, To: l.MSN}
				f.next = l.MSN
				return nil, g
			}
			seg, err := f.fetch(ctx, l)
			if errors.Is(err, ErrOffline) {
				// Gone between the playlist and the request: a gap if later ones exist.
				f.queue = f.queue[1:]
				f.next = l.MSN + 1
				return nil, &Gap{From: l.MSN, To: l.MSN + 1}
			}
			if err != nil {
				return nil, err
			}
			f.queue = f.queue[1:]
			f.next = l.MSN + 1
			return seg, nil
		}
		if f.ended {
			return nil, io.EOF
		}
		if err := f.reload(ctx); err != nil {
			return nil, err
		}
	}
}

// reload reads the playlist, blocking until segment f.next is complete once started.
func (f *Follower) reload(ctx context.Context) error {
	u := f.base
	if f.started {
		u += "?_HLS_msn=" + strconv.FormatUint(f.next, 10)
	}
	// A blocking reload waits up to three target durations; the origin answers 503 after.
	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	b, status, err := f.o.get(rctx, u, maxPlaylist)
	switch {
	case status == http.StatusServiceUnavailable:
		// Nothing new in time (the origin waited three target durations): ask again, after a
		// pause in case something else answers 503 at once.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return ctx.Err()
	case status == http.StatusBadRequest && f.started:
		// _HLS_msn too far ahead: the stream restarted lower (a new broadcast). Read it whole.
		b, _, err = f.o.get(rctx, f.base, maxPlaylist)
	}
	if err != nil {
		return err
	}
	p, err := ParseMedia(b)
	if err != nil {
		return err
	}
	if !f.started && len(p.Segments) > 0 {
		f.next, f.started = p.Segments[0].MSN, true
	}
	f.queue = f.queue[:0]
	for _, l := range p.Segments {
		if l.MSN >= f.next {
			f.queue = append(f.queue, l)
		}
	}
	f.ended = p.Ended
	if !f.started && !p.Ended {
		// Nothing complete yet: wait a little before asking again without a directive.
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *Follower) resolve(ref string) (string, error) {
	b, err := url.Parse(f.base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("uri %q: %w", ref, err)
	}
	u := b.ResolveReference(r)
	if u.Scheme != b.Scheme || u.Host != b.Host {
		return "", fmt.Errorf("uri %q leaves the origin", ref)
	}
	return u.String(), nil
}

func (f *Follower) fetch(ctx context.Context, l Listed) (*Segment, error) {
	if l.InitURI == "" {
		return nil, errors.New("segment without EXT-X-MAP")
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if l.InitURI != f.initURI {
		u, err := f.resolve(l.InitURI)
		if err != nil {
			return nil, err
		}
		b, _, err := f.o.get(rctx, u, maxInit)
		if err != nil {
			return nil, err
		}
		f.initURI, f.init = l.InitURI, b
	}
	u, err := f.resolve(l.URI)
	if err != nil {
		return nil, err
	}
	b, _, err := f.o.get(rctx, u, maxSegment)
	if err != nil {
		return nil, err
	}
	return &Segment{MSN: l.MSN, InitURI: l.InitURI, Init: f.init, Data: b, PDT: l.PDT, Duration: l.Duration,
		Discontinuity: l.Discontinuity, AdMarkers: l.AdMarkers}, nil
}
