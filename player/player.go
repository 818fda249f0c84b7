// Package player serves Glasscast's web player: an hls.js page for one channel
// (/player/<channel id>) or any playback URL (/player/?url=...), and the "Go live" page
// (/player/go-live) that publishes a browser's camera over WHIP, with every asset embedded in
// the binary so nothing is loaded from a CDN.
package player

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"glasscast/media"
)

//go:embed web
var web embed.FS

// Config says where channels' playlists live.
type Config struct {
	Region, Account string
	// Prefix is the path the handler is mounted at (default "/player/").
	Prefix string
	// WHIP is the WHIP endpoint the Go live page publishes to (default "/whip").
	WHIP string
}

// Handler serves the player pages and assets.
type Handler struct {
	cfg    Config
	page   *template.Template
	golive *template.Template
	assets http.Handler
}

// New returns the player handler.
func New(cfg Config) *Handler {
	if cfg.Prefix == "" {
		cfg.Prefix = "/player/"
	}
	if cfg.WHIP == "" {
		cfg.WHIP = "/whip"
	}
	sub, _ := fs.Sub(web, "web")
	return &Handler{
		cfg:    cfg,
		page:   template.Must(template.ParseFS(sub, "index.html")),
		golive: template.Must(template.ParseFS(sub, "golive.html")),
		assets: http.StripPrefix(cfg.Prefix+"assets/", http.FileServer(http.FS(sub))),
	}
}

type pageData struct {
	Assets, URL, Token, WHIP string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.cfg.Prefix)
	if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(rest, "assets/") {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.assets.ServeHTTP(w, r)
		return
	}
	d := pageData{Assets: h.cfg.Prefix + "assets", URL: r.URL.Query().Get("url"), Token: r.URL.Query().Get("token"), WHIP: h.cfg.WHIP}
	page := h.page
	if rest == "go-live" {
		page = h.golive
	} else if rest != "" {
		// /player/<channel id>: that channel's playback URL on this host.
		if _, ok := media.ParsePlaybackPath(media.MultivariantPath(h.cfg.Region, h.cfg.Account, rest)); !ok {
			http.NotFound(w, r)
			return
		}
		d.URL = media.MultivariantPath(h.cfg.Region, h.cfg.Account, rest)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob: data: https: http:; connect-src 'self' https: http:; img-src 'self' data: https:; style-src 'self'; script-src 'self'; worker-src 'self' blob:")
	_ = page.Execute(w, d)
}

// Vendor is the player's vendored JavaScript (hls.min.js and its licence), for other pages
// that play streams with the same copy (the web console).
func Vendor() fs.FS {
	sub, _ := fs.Sub(web, "web/vendor")
	return sub
}
