package origin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"glasscast/media"
	"glasscast/origin/playlist"
)

func (o *Origin) serveObject(w http.ResponseWriter, r *http.Request, t media.PlaybackTarget, obj playlist.Object) {
	start := time.Now()
	switch obj.Kind {
	case playlist.KindInit:
		o.stats.inits.Add(1)
	case playlist.KindPart:
		o.stats.parts.Add(1)
	case playlist.KindSegment:
		o.stats.segments.Add(1)
	}
	b := o.lookup(t.ChannelID)
	if b == nil {
		fail(w, http.StatusNotFound, cacheError, "channel offline")
		return
	}
	b.mu.RLock()
	rd := b.renditions[t.Rendition]
	var ctype string
	if rd != nil {
		ctype = contentType(rd.desc.Codecs)
	}
	b.mu.RUnlock()
	if rd == nil {
		fail(w, http.StatusNotFound, cacheError, "no such rendition")
		return
	}
	switch obj.Kind {
	case playlist.KindInit:
		b.mu.RLock()
		data := rd.inits[obj.Generation]
		b.mu.RUnlock()
		if data == nil {
			fail(w, http.StatusNotFound, cacheError, "no such init segment")
			return
		}
		serveBytes(w, r, ctype, [][]byte{data})
	case playlist.KindPart:
		o.servePart(w, r, b, rd, obj, ctype, start)
	case playlist.KindSegment:
		o.serveSegment(w, r, b, rd, obj.MSN, ctype, start)
	}
}

// servePart answers a part that exists at once, and holds a request for the hinted next part
// until the part exists, then sends it whole (D11). Anything else is unknown (D12).
func (o *Origin) servePart(w http.ResponseWriter, r *http.Request, b *broadcast, rd *rendition, obj playlist.Object, ctype string, start time.Time) {
	find := func() []byte {
		if s := rd.segment(obj.MSN); s != nil && obj.Part < len(s.data) {
			return s.data[obj.Part]
		}
		return nil
	}
	b.mu.RLock()
	data := find()
	hinted := false
	if data == nil && b.low() && !b.ended {
		hinted = isNextPart(rd, obj.MSN, obj.Part)
	}
	b.mu.RUnlock()
	if data == nil && !hinted {
		fail(w, http.StatusNotFound, cacheError, "no such part")
		return
	}
	if data == nil {
		ctx := r.Context()
		// A publisher resuming after a cut skips to a later segment: the hinted part then
		// never comes, and the request is answered as soon as that is known.
		err := b.await(ctx, rd, start.Add(b.blockLimit()), func() bool {
			return find() != nil || rd.reached(obj.MSN, obj.Part+1) || rd.reached(obj.MSN+1, 0)
		})
		if ctx.Err() != nil {
			return
		}
		b.mu.RLock()
		data = find()
		b.mu.RUnlock()
		if data == nil {
			if errors.Is(err, errTimeout) {
				fail(w, http.StatusServiceUnavailable, cacheError, "part not ready in time")
			} else {
				fail(w, http.StatusNotFound, cacheError, "broadcast ended or skipped the part")
			}
			return
		}
	}
	serveBytes(w, r, ctype, [][]byte{data})
}

// isNextPart reports whether (msn, part) is the part the preload hint names. Called with the
// broadcast lock held.
func isNextPart(rd *rendition, msn uint64, part int) bool {
	t := rd.tail()
	if t == nil {
		return false
	}
	if t.complete {
		return msn == t.msn+1 && part == 0
	}
	return msn == t.msn && part == len(t.data)
}

// serveSegment answers a complete segment whole. For LL-HLS it also streams the segment in
// progress, and the next one once it starts, part by part as the parts arrive: Amazon's IVS
// player plays the segments of its EXT-X-PREFETCH lines that way.
func (o *Origin) serveSegment(w http.ResponseWriter, r *http.Request, b *broadcast, rd *rendition, msn uint64, ctype string, start time.Time) {
	b.mu.RLock()
	s := rd.segment(msn)
	var parts [][]byte
	if s != nil && s.complete {
		parts = s.data
	}
	prefetchable := s == nil && b.low() && !b.ended && isPrefetched(rd, msn)
	// A segment a playlist announced with EXT-X-PREFETCH before the broadcast ended will
	// never exist. Amazon's IVS player asks for it as soon as the previous one ends; a 404
	// would be a playback error, while an empty answer sends it to the playlist, ENDLIST,
	// and the Ended state.
	neverStarted := s == nil && b.low() && b.ended && isPrefetched(rd, msn)
	gap := s != nil && s.gap
	b.mu.RUnlock()
	switch {
	case gap:
		fail(w, http.StatusNotFound, cacheError, "segment missing (EXT-X-GAP)")
		return
	case neverStarted:
		endedPrefetch(w)
		return
	case parts != nil:
		serveBytes(w, r, ctype, parts)
		return
	case s != nil && b.low():
		o.streamSegment(w, r, b, rd, msn, ctype)
		return
	case !prefetchable:
		fail(w, http.StatusNotFound, cacheError, "no such segment")
		return
	}
	ctx := r.Context()
	err := b.await(ctx, rd, start.Add(b.blockLimit()), func() bool { return rd.segment(msn) != nil })
	if ctx.Err() != nil {
		return
	}
	b.mu.RLock()
	started := rd.segment(msn) != nil
	b.mu.RUnlock()
	if !started {
		if errors.Is(err, errTimeout) {
			fail(w, http.StatusServiceUnavailable, cacheError, "segment not started in time")
		} else {
			endedPrefetch(w)
		}
		return
	}
	o.streamSegment(w, r, b, rd, msn, ctype)
}

// isPrefetched reports whether msn is one of the two segments the playlist's EXT-X-PREFETCH
// lines name and that has not started. Called with the broadcast lock held.
func isPrefetched(rd *rendition, msn uint64) bool {
	t := rd.tail()
	if t == nil {
		return false
	}
	next := t.msn
	if t.complete {
		next++
	}
	return msn == next || msn == next+1
}

// streamSegment writes a segment's parts as they arrive and returns when the segment is
// complete. The response has no Content-Length; each part is flushed on its own. If the
// segment stops growing for three target durations the response is aborted, so that no cache
// keeps a truncated segment as if it were whole.
// endedPrefetch answers a prefetched segment that the end of the broadcast cancelled: empty,
// and never stored by a cache.
func endedPrefetch(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

func (o *Origin) streamSegment(w http.ResponseWriter, r *http.Request, b *broadcast, rd *rendition, msn uint64, ctype string) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheObject)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	ctx := r.Context()
	sent := 0
	for {
		b.mu.RLock()
		s := rd.segment(msn)
		var chunk [][]byte
		complete := false
		if s != nil {
			chunk = s.data[sent:]
			complete = s.complete
		}
		b.mu.RUnlock()
		if s == nil || s.gap {
			// Dropped while streaming, or it turned out to be a gap: cannot end cleanly.
			panic(http.ErrAbortHandler)
		}
		for _, p := range chunk {
			if _, err := w.Write(p); err != nil {
				return
			}
		}
		sent += len(chunk)
		if len(chunk) > 0 {
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if complete {
			return
		}
		err := b.await(ctx, rd, time.Now().Add(b.blockLimit()), func() bool {
			s := rd.segment(msn)
			return s == nil || s.complete || len(s.data) > sent
		})
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			panic(http.ErrAbortHandler)
		}
	}
}

// serveBytes answers a complete object: the concatenation of chunks, read in place, with
// Content-Length and range support.
func serveBytes(w http.ResponseWriter, r *http.Request, ctype string, chunks [][]byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheObject)
	if r.Header.Get("Range") == "" {
		// The common case, a whole object, goes straight from the parts to the connection.
		h.Set("Accept-Ranges", "bytes")
		n := 0
		for _, c := range chunks {
			n += len(c)
		}
		h.Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		for _, c := range chunks {
			if _, err := w.Write(c); err != nil {
				return
			}
		}
		return
	}
	if len(chunks) == 1 {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(chunks[0]))
		return
	}
	http.ServeContent(w, r, "", time.Time{}, newChunksReader(chunks))
}

// chunksReader reads a sequence of byte slices as one seekable stream without joining them:
// a segment is served straight from its parts.
type chunksReader struct {
	chunks [][]byte
	size   int64
	off    int64
}

func newChunksReader(chunks [][]byte) *chunksReader {
	var n int64
	for _, c := range chunks {
		n += int64(len(c))
	}
	return &chunksReader{chunks: chunks, size: n}
}

func (c *chunksReader) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	n := 0
	pos := c.off
	for _, ch := range c.chunks {
		l := int64(len(ch))
		if pos >= l {
			pos -= l
			continue
		}
		k := copy(p[n:], ch[pos:])
		n += k
		pos = 0
		if n == len(p) {
			break
		}
	}
	c.off += int64(n)
	return n, nil
}

func (c *chunksReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, errors.New("origin: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("origin: negative position")
	}
	c.off = offset
	return offset, nil
}

// WriteTo lets io.Copy write the chunks directly instead of through a buffer.
func (c *chunksReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	pos := c.off
	for _, ch := range c.chunks {
		l := int64(len(ch))
		if pos >= l {
			pos -= l
			continue
		}
		n, err := w.Write(ch[pos:])
		total += int64(n)
		c.off += int64(n)
		if err != nil {
			return total, err
		}
		pos = 0
	}
	return total, nil
}
