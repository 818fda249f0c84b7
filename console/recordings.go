package console

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
)

// Buckets reads the buckets recordings are written to, as `glasscast recordings` does.
type Buckets interface {
	// Keys lists the object keys under prefix.
	Keys(r *http.Request, bucket, prefix string) ([]string, error)
	// Open streams an object.
	Open(r *http.Request, bucket, key string) (io.ReadCloser, error)
}

// Recording is one recording of a channel, from its most final event file.
type Recording struct {
	Prefix     string `json:"prefix"`
	Status     string `json:"status"`
	StartedAt  string `json:"startedAt"`
	EndedAt    string `json:"endedAt,omitempty"`
	DurationMS *int64 `json:"durationMs,omitempty"`
	// URLs under /console/objects/, readable with the session cookie.
	Master    string `json:"master"`
	Thumbnail string `json:"thumbnail,omitempty"`
}

// serveRecordings lists a channel's recordings in a bucket: GET
// /console/recordings?bucket=B&channel=ID.
func (h *Handler) serveRecordings(w http.ResponseWriter, r *http.Request) {
	bucket, channel := r.URL.Query().Get("bucket"), r.URL.Query().Get("channel")
	if !validName(bucket) || !validName(channel) {
		writeError(w, http.StatusBadRequest, "ValidationException", "bucket and channel are required")
		return
	}
	base := "ivs/v1/" + h.cfg.Account + "/" + channel + "/"
	keys, err := h.cfg.Buckets.Keys(r, bucket, base)
	if err != nil {
		writeError(w, http.StatusBadGateway, "InternalServerException", "listing the bucket: "+err.Error())
		return
	}
	const started, ended, failed = "events/recording-started.json", "events/recording-ended.json", "events/recording-failed.json"
	final := map[string]string{} // prefix -> its most final event file
	thumbs := map[string]string{}
	for _, k := range keys {
		for _, name := range []string{started, ended, failed} {
			if p, ok := strings.CutSuffix(k, "/"+name); ok && (final[p] == "" || name != started) {
				final[p] = k
			}
		}
		if i := strings.Index(k, "/media/thumbnails/"); i > 0 && strings.HasSuffix(k, ".jpg") {
			thumbs[k[:i]] = k // any one; the newest is what a listing sorts last
		}
	}
	out := []Recording{}
	for p, ev := range final {
		rec := Recording{Prefix: p, Master: h.objectURL(bucket, p+"/media/hls/master.m3u8")}
		if t := thumbs[p]; t != "" {
			rec.Thumbnail = h.objectURL(bucket, t)
		}
		var e struct {
			StartedAt string `json:"recording_started_at"`
			EndedAt   string `json:"recording_ended_at"`
			Status    string `json:"recording_status"`
			Media     struct {
				HLS struct {
					DurationMS *int64 `json:"duration_ms"`
				} `json:"hls"`
			} `json:"media"`
		}
		if body, err := h.cfg.Buckets.Open(r, bucket, ev); err == nil {
			err = json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&e)
			body.Close()
			if err != nil {
				e.Status = "UNREADABLE"
			}
		}
		rec.Status, rec.StartedAt, rec.EndedAt, rec.DurationMS = e.Status, e.StartedAt, e.EndedAt, e.Media.HLS.DurationMS
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt > out[j].StartedAt })
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out})
}

func (h *Handler) objectURL(bucket, key string) string {
	return prefix + "objects/" + url.PathEscape(bucket) + "/" + key
}

// serveObject streams a recording's object to the signed-in browser: GET
// /console/objects/<bucket>/ivs/v1/.... A presigned playlist would not do: the segments it
// names are fetched unsigned, so a private bucket plays only through a reader that can read it.
func (h *Handler) serveObject(w http.ResponseWriter, r *http.Request, rest string) {
	bucket, key, ok := strings.Cut(rest, "/")
	if !ok || !validName(bucket) || !strings.HasPrefix(key, "ivs/v1/") || path.Clean(key) != key {
		http.NotFound(w, r)
		return
	}
	body, err := h.cfg.Buckets.Open(r, bucket, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "NoSuchKey") {
			http.NotFound(w, r)
			return
		}
		writeError(w, http.StatusBadGateway, "InternalServerException", "reading the bucket: "+err.Error())
		return
	}
	defer body.Close()
	types := map[string]string{".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".jpg": "image/jpeg", ".json": "application/json", ".mp4": "video/mp4", ".m4s": "video/iso.segment"}
	if ct := types[path.Ext(key)]; ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Cache-Control", "private, max-age=60")
	_, _ = io.Copy(stallBound(w), body)
}

// validName accepts bucket names and channel IDs: letters, digits, '.', '-', '_'.
func validName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return s != "." && s != ".."
}
