package origin

import (
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"

	"glasscast/media"
	"glasscast/origin/playlist"
)

// Cache-Control values (row C4 of reference/llhls.md). Objects never change under a name;
// playlists change every part, so caches may reuse one only briefly; a playlist that answers
// _HLS_msn/_HLS_part names a state that stays valid, so it can live a little longer.
const (
	cacheObject       = "public, max-age=31536000, immutable"
	cacheBlocking     = "public, max-age=4"
	cachePlaylist     = "public, max-age=1"
	cacheMultivariant = "public, max-age=2"
	// An offline answer is not reused: a cached 404 would outlive the moment the channel turns
	// LIVE, and a player started on that news would be told it is offline. Concurrent polls
	// of an offline channel still make one upstream request per edge (coalescing).
	cacheOffline = "no-cache"
	cacheError   = "no-cache"
)

const (
	typePlaylist = "application/vnd.apple.mpegurl"
	typeVideo    = "video/mp4"
	typeAudio    = "audio/mp4"
)

// ServeHTTP answers playback requests: the multivariant playlist, media playlists (blocking
// reloads and delta updates included), init segments, segments and parts.
func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Players run on other origins; Age and Date let hls.js judge a cached playlist's age.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Age, Date")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", "86400")
		h.Set("Allow", "GET, HEAD, OPTIONS")
		h.Set("Cache-Control", cacheError)
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		fail(w, http.StatusMethodNotAllowed, cacheError, "method not allowed")
		return
	}

	t, ok := media.ParsePlaybackPath(r.URL.Path)
	if !ok || o.cfg.Region != "" && t.Region != o.cfg.Region || o.cfg.Account != "" && t.Account != o.cfg.Account {
		fail(w, http.StatusNotFound, cacheError, "not found")
		return
	}
	if t.Rendition == "" {
		o.stats.multivariant.Add(1)
		o.serveMultivariant(w, r, t)
		return
	}
	if t.File == playlist.MediaPlaylistName {
		o.serveMedia(w, r, t)
		return
	}
	obj, ok := playlist.ParseObjectName(t.File)
	if !ok {
		fail(w, http.StatusNotFound, cacheError, "not found")
		return
	}
	o.serveObject(w, r, t, obj)
}

// fail writes a short plain-text error.
func fail(w http.ResponseWriter, status int, cacheControl, msg string) {
	h := w.Header()
	h.Del("Content-Encoding")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// writePlaylist sends a rendered playlist, gzipped when the client accepts it (P19).
func (o *Origin) writePlaylist(w http.ResponseWriter, r *http.Request, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", typePlaylist)
	h.Set("Cache-Control", cacheControl)
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		zb := o.bufs.get()
		defer o.bufs.put(zb)
		*zb = o.gzip(*zb, body)
		body = *zb
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// appendWriter lets gzip write into a byte slice.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// gzip appends the compressed body to dst.
func (o *Origin) gzip(dst, body []byte) []byte {
	aw := &appendWriter{b: dst}
	zw, _ := o.gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		// BestSpeed: playlists are small and repetitive, so it compresses nearly as well as
		// the default at a fraction of the cost, on a path taken every part.
		zw, _ = gzip.NewWriterLevel(aw, gzip.BestSpeed)
	} else {
		zw.Reset(aw)
	}
	_, _ = zw.Write(body)
	_ = zw.Close()
	o.gzipWriters.Put(zw)
	return aw.b
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) with a non-zero quality.
func acceptsGzip(header string) bool {
	star := false
	for _, item := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(item), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch coding {
		case "gzip", "x-gzip":
			return q > 0
		case "*":
			star = q > 0
		}
	}
	return star
}

// contentType is video/mp4, or audio/mp4 for a rendition without a video codec.
func contentType(codecs string) string {
	if codecs == "" {
		return typeVideo
	}
	for _, c := range strings.Split(codecs, ",") {
		c = strings.TrimSpace(c)
		if i := strings.IndexByte(c, '.'); i >= 0 {
			c = c[:i]
		}
		switch c {
		case "avc1", "avc3", "hvc1", "hev1", "av01", "vp09", "vp08", "dvh1", "dvhe", "mp4v":
			return typeVideo
		}
	}
	return typeAudio
}
