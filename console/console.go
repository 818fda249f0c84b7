// Package console serves Glasscast's web console at /console: a signed-in page that drives a
// deployment from the browser. It is a client of the same API the CLI uses: the browser posts
// IVS and IVS Chat operations to /console/api/<service>/<Operation>, and the handler runs them
// in-process through the control API's own handlers, authorized by a session cookie and a
// CSRF token instead of a SigV4 signature. Every asset is embedded; nothing loads from a CDN.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/klauspost/compress/gzhttp"
)

//go:embed web
var web embed.FS

// API runs an IVS ("ivs"), IVS Chat ("ivschat") or CloudWatch ("monitoring") operation named by r's method and path for
// an already authenticated caller; control.Server implements it.
type API interface {
	ServeOperation(w http.ResponseWriter, r *http.Request, service string)
}

// Config configures the console.
type Config struct {
	// Secret returns the secret access key of an access key ID: the keys SigV4 accepts.
	Secret func(accessKeyID string) (string, bool)
	API    API
	// Vendor holds hls.min.js and its licence (the player's embedded copy).
	Vendor fs.FS
	// Ingest names the ingest protocols this deployment offers with their ports, shown with
	// each channel's ingest endpoint ({"rtmps": "1936", "rtmp": "1935"}).
	Ingest map[string]string
	// Region and Account build playback key pair and channel ARNs shown in how-tos.
	Region, Account string
	// SessionTTL is how long a sign-in lasts (default 12 h); MaxSessions bounds the sessions
	// kept (default 1000; the least recently used goes first).
	SessionTTL  time.Duration
	MaxSessions int
	// Events follows the EventBridge-shaped events (events.Tail): those of detailTypes and
	// channels (empty: all), replaying since before now, one JSON line per Write, until ctx
	// ends. Nil answers the live feed with 503.
	Events func(ctx context.Context, detailTypes, channels []string, since time.Duration, out io.Writer) error
	// Webhooks reports the configured webhooks' delivery state (events.WebhookStates).
	Webhooks func(ctx context.Context) (any, error)
	// Buckets reads recordings; nil hides them.
	Buckets Buckets
	Log     *slog.Logger
}

// Handler serves /console/.
type Handler struct {
	cfg      Config
	assets   http.Handler
	vendor   http.Handler
	index    []byte
	sessions *expirable.LRU[string, *session]
	failures *expirable.LRU[string, *failures]
	mu       sync.Mutex    // guards the failures counters
	feeds    chan struct{} // a slot per open event feed
}

// maxFeeds bounds the open event feeds (each holds a JetStream consumer); feedLifetime ends
// one that a vanished client left behind. EventSource reconnects on its own.
const (
	maxFeeds     = 64
	feedLifetime = 10 * time.Minute
)

type session struct {
	AccessKeyID string
	CSRF        string
	Expires     time.Time
}

// failures counts a client's wrong sign-ins; after freeFailures each one locks the client out
// for twice as long as the one before.
type failures struct {
	n     int
	until time.Time
}

const (
	prefix       = "/console/"
	cookieName   = "glasscast_console"
	csrfHeader   = "X-Csrf-Token"
	freeFailures = 3
	maxLockout   = 5 * time.Minute
	// wrongDelay slows every wrong answer, so guessing is slow even within the free failures.
	wrongDelay = 500 * time.Millisecond
)

// New returns the console handler.
func New(cfg Config) *Handler {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1000
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(web, "web")
	index, _ := fs.ReadFile(sub, "index.html")
	h := &Handler{
		cfg:      cfg,
		assets:   gzhttp.GzipHandler(http.StripPrefix(prefix+"assets/", http.FileServer(http.FS(sub)))),
		index:    index,
		sessions: expirable.NewLRU[string, *session](cfg.MaxSessions, nil, cfg.SessionTTL),
		failures: expirable.NewLRU[string, *failures](10000, nil, maxLockout*2),
		feeds:    make(chan struct{}, maxFeeds),
	}
	if cfg.Vendor != nil {
		// hls.min.js is most of a first load: 0.6 MB, a third of that compressed.
		h.vendor = gzhttp.GzipHandler(http.StripPrefix(prefix+"vendor/", http.FileServer(http.FS(cfg.Vendor))))
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		if r.URL.Path == strings.TrimSuffix(prefix, "/") {
			http.Redirect(w, r, prefix, http.StatusFound)
			return
		}
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	switch {
	case strings.HasPrefix(rest, "assets/") && isGet(r):
		w.Header().Set("Cache-Control", "no-cache")
		h.assets.ServeHTTP(w, r)
	case strings.HasPrefix(rest, "vendor/") && isGet(r) && h.vendor != nil:
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.vendor.ServeHTTP(w, r)
	case rest == "session" && isGet(r):
		h.serveSession(w, r)
	case rest == "signin" && r.Method == http.MethodPost:
		h.signIn(w, r)
	case rest == "signout" && r.Method == http.MethodPost:
		if s := h.authorize(w, r); s != nil {
			h.signOut(w, r)
		}
	case rest == "webhooks" && isGet(r):
		if h.authorize(w, r) != nil {
			h.serveWebhooks(w, r)
		}
	case rest == "events" && isGet(r):
		if h.authorize(w, r) != nil {
			h.serveEvents(w, r)
		}
	case (rest == "recordings" || strings.HasPrefix(rest, "objects/")) && isGet(r) && h.cfg.Buckets != nil:
		if h.authorize(w, r) != nil {
			if rest == "recordings" {
				h.serveRecordings(w, r)
			} else {
				h.serveObject(w, r, strings.TrimPrefix(rest, "objects/"))
			}
		}
	case strings.HasPrefix(rest, "api/"):
		h.serveAPI(w, r, strings.TrimPrefix(rest, "api/"))
	case isGet(r) && !strings.Contains(rest, "."):
		// Every page of the single-page console is the same document.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob: data: https: http:; connect-src 'self' https: http: wss: ws:; img-src 'self' data: https: http:; style-src 'self'; script-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'")
		_, _ = w.Write(h.index)
	default:
		http.NotFound(w, r)
	}
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// serveSession tells the page whether it is signed in and, if so, its CSRF token.
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s := h.session(r)
	if s == nil {
		writeJSON(w, http.StatusOK, map[string]any{"signedIn": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"signedIn": true, "accessKeyId": s.AccessKeyID, "csrfToken": s.CSRF,
		"expires": s.Expires.UTC().Format(time.RFC3339), "ingest": h.cfg.Ingest, "region": h.cfg.Region, "account": h.cfg.Account})
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	// A JSON body cannot be sent cross-site without a CORS preflight this handler never
	// grants, so a page elsewhere cannot sign a browser in to an attacker's account.
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, http.StatusForbidden, "AccessDeniedException", "sign-in must be a JSON request from the console page")
		return
	}
	client := clientOf(r)
	if wait := h.lockedOut(client); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "ThrottlingException",
			fmt.Sprintf("too many wrong sign-ins from this address: try again in %d s", int(math.Ceil(wait.Seconds()))))
		return
	}
	var in struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "the sign-in body must be JSON with accessKeyId and secretAccessKey")
		return
	}
	secret, ok := h.cfg.Secret(in.AccessKeyID)
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(in.SecretAccessKey)) != 1 {
		wait := h.fail(client)
		h.cfg.Log.Warn("console sign-in refused", "remote", client, "accessKeyId", in.AccessKeyID)
		select { // slow every wrong answer; a client that hangs up frees the handler
		case <-time.After(wrongDelay):
		case <-r.Context().Done():
		}
		msg := "wrong access key ID or secret access key"
		if wait > 0 {
			msg += fmt.Sprintf("; too many attempts: try again in %d s", int(math.Ceil(wait.Seconds())))
		}
		writeError(w, http.StatusForbidden, "AccessDeniedException", msg)
		return
	}
	h.mu.Lock()
	h.failures.Remove(client)
	h.mu.Unlock()
	s := &session{AccessKeyID: in.AccessKeyID, CSRF: token(), Expires: time.Now().Add(h.cfg.SessionTTL)}
	id := token()
	h.sessions.Add(id, s)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: prefix, Expires: s.Expires,
		MaxAge: int(h.cfg.SessionTTL.Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	h.cfg.Log.Info("console sign-in", "remote", client, "accessKeyId", in.AccessKeyID)
	writeJSON(w, http.StatusOK, map[string]any{"signedIn": true, "accessKeyId": s.AccessKeyID, "csrfToken": s.CSRF,
		"expires": s.Expires.UTC().Format(time.RFC3339), "ingest": h.cfg.Ingest, "region": h.cfg.Region, "account": h.cfg.Account})
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		h.sessions.Remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: prefix, MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]any{"signedIn": false})
}

// serveAPI runs /console/api/<service>/<Operation> (or .../tags/<arn>) through the API.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	if h.authorize(w, r) == nil {
		return
	}
	service, op, ok := strings.Cut(rest, "/")
	if !ok || (service != "ivs" && service != "ivschat" && service != "monitoring") || op == "" {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "unknown console API path "+r.URL.Path)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + op
	r2.URL.RawPath = ""
	r2.RequestURI = ""
	if service == "monitoring" {
		// CloudWatch's JSON 1.0 protocol, as the CLI speaks it: the operation in X-Amz-Target.
		r2.URL.Path = "/"
		r2.Header.Set("Content-Type", "application/x-amz-json-1.0")
		r2.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801."+op)
		r2.Header.Del(csrfHeader)
	}
	h.cfg.API.ServeOperation(w, r2, service)
}

// serveEvents streams events as Server-Sent Events: GET only (EventSource sends no headers,
// so no CSRF token; the SameSite=Strict cookie keeps other sites out and nothing changes).
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Events == nil {
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "this deployment keeps no event stream")
		return
	}
	select {
	case h.feeds <- struct{}{}:
		defer func() { <-h.feeds }()
	default:
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "too many open event feeds")
		return
	}
	q := r.URL.Query()
	split := func(v string) []string {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	since := time.Hour
	if d, err := time.ParseDuration(q.Get("since")); err == nil && d >= 0 && d <= 24*time.Hour {
		since = d
	}
	flusher, _ := w.(http.Flusher)
	out := stallBound(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(out, ": events\n\n")
	if flusher != nil {
		flusher.Flush()
	}
	ctx, cancel := context.WithTimeout(r.Context(), feedLifetime)
	defer cancel()
	err := h.cfg.Events(ctx, split(q.Get("type")), split(q.Get("channel")), since, &sseWriter{w: out, f: flusher})
	if err != nil && ctx.Err() == nil {
		b, _ := json.Marshal(map[string]string{"message": err.Error()})
		_, _ = fmt.Fprintf(out, "event: failure\ndata: %s\n\n", b)
	}
}

func (h *Handler) serveWebhooks(w http.ResponseWriter, r *http.Request) {
	var out any = []any{}
	if h.cfg.Webhooks != nil {
		var err error
		if out, err = h.cfg.Webhooks(r.Context()); err != nil {
			writeError(w, http.StatusBadGateway, "InternalServerException", err.Error())
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

// stallLimit is how long a response that streams for minutes (an event feed, a recording
// download) may wait on a browser that has stopped reading.
const stallLimit = time.Minute

// stallBound is w with the connection's write deadline moved stallLimit ahead before each
// write, in place of the listener's whole-response write timeout: such a response lasts as long
// as the browser keeps reading, and no longer than stallLimit once it stops.
func stallBound(w http.ResponseWriter) io.Writer {
	d := deadlineWriter{w: w, rc: http.NewResponseController(w)}
	d.extend()
	return d
}

type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d deadlineWriter) extend() { _ = d.rc.SetWriteDeadline(time.Now().Add(stallLimit)) }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.extend()
	return d.w.Write(p)
}

// sseWriter sends each line written to it as one Server-Sent Event.
type sseWriter struct {
	w   io.Writer
	f   http.Flusher
	buf []byte
}

func (s *sseWriter) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if _, err := fmt.Fprintf(s.w, "data: %s\n\n", s.buf[:i]); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
		if s.f != nil {
			s.f.Flush()
		}
	}
}

// authorize answers 403 unless r carries a live session cookie and, on every request but a
// read-only GET, that session's CSRF token in the X-Csrf-Token header.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) *session {
	s := h.session(r)
	if s == nil {
		writeError(w, http.StatusForbidden, "AccessDeniedException", "not signed in to the console (or the session expired)")
		return nil
	}
	if !isGet(r) || strings.HasPrefix(r.URL.Path, prefix+"api/") {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(s.CSRF)) != 1 {
			writeError(w, http.StatusForbidden, "AccessDeniedException", "missing or wrong CSRF token: reload the console")
			return nil
		}
	}
	return s
}

func (h *Handler) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s, ok := h.sessions.Get(c.Value)
	if !ok || time.Now().After(s.Expires) {
		return nil
	}
	return s
}

// lockedOut reports how long client must wait before its next sign-in attempt.
func (h *Handler) lockedOut(client string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.failures.Get(client)
	if !ok {
		return 0
	}
	return time.Until(f.until)
}

// fail records a wrong sign-in and returns the lock-out it earned.
func (h *Handler) fail(client string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.failures.Get(client)
	if !ok {
		f = &failures{}
	}
	f.n++
	var wait time.Duration
	if f.n > freeFailures {
		wait = min(time.Second<<min(f.n-freeFailures-1, 16), maxLockout)
		f.until = time.Now().Add(wait)
	}
	h.failures.Add(client, f)
	return wait
}

// clientOf is the address a sign-in comes from (the peer; a proxy in front should be
// configured to limit sign-ins itself).
func clientOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError answers in the API's AWS shape, so the page shows both the same way.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-amzn-ErrorType", code)
	writeJSON(w, status, map[string]string{"message": msg})
}
