package push

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"glasscast/media"
	"glasscast/origin"
)

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// Token is the shared secret clients present as "Authorization: Bearer <Token>". An empty
	// Token refuses every request: the handler never runs unauthenticated.
	Token string
	// MaxBodyBytes bounds a request body, and with it the memory one connection can hold.
	// Default 32 MiB.
	MaxBodyBytes int64
}

const defaultMaxBody = 32 << 20

// Handler serves the push endpoints and calls a media.Sink. Mount it under a prefix such as
// "/_push/"; the last path element names the operation.
type Handler struct {
	sink  media.Sink
	token []byte
	limit int64

	mu       sync.Mutex
	sessions map[string]*session // by channel ID
}

// session is the broadcast a channel's pushes go to.
type session struct {
	streamID string
	bc       media.Broadcast
	closed   bool
}

// NewHandler returns a Handler that publishes into sink.
func NewHandler(sink media.Sink, cfg HandlerConfig) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBody
	}
	return &Handler{sink: sink, token: []byte(cfg.Token), limit: cfg.MaxBodyBytes, sessions: make(map[string]*session)}
}

// Error codes, sent in the Glasscast-Push-Error header so the client can tell them apart.
const (
	errHeader      = "Glasscast-Push-Error"
	codeNotFound   = "not-found"  // media.ErrNotFound: the sink lacks the rendition
	codeSuperseded = "superseded" // another stream holds the channel, or this one closed
	codeRejected   = "rejected"   // the sink refused the call
	codeBadRequest = "bad-request"
	codeAuth       = "unauthorized"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, codeBadRequest, "POST only")
		return
	}
	if !h.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glasscast-push"`)
		reply(w, http.StatusUnauthorized, codeAuth, "bad or missing token")
		return
	}
	body, status, err := h.readBody(w, r)
	if err != nil {
		reply(w, status, codeBadRequest, err.Error())
		return
	}
	op := path.Base(r.URL.Path)
	ops, frames := []string{op}, [][]byte{body}
	if op == opBatch {
		if ops, frames, err = splitBatch(body); err != nil {
			reply(w, http.StatusBadRequest, codeBadRequest, err.Error())
			return
		}
	}
	metas := make([]*meta, len(frames))
	payloads := make([][]byte, len(frames))
	for i := range frames {
		if metas[i], payloads[i], err = decodeFrame(ops[i], frames[i]); err != nil {
			reply(w, http.StatusBadRequest, codeBadRequest, err.Error())
			return
		}
	}
	for i := range frames {
		err = h.apply(r.Context(), ops[i], metas[i], payloads[i])
		if err != nil {
			break
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, media.ErrNotFound):
			reply(w, http.StatusNotFound, codeNotFound, err.Error())
		case errors.Is(err, errSuperseded), errors.Is(err, origin.ErrSuperseded), errors.Is(err, origin.ErrClosed):
			reply(w, http.StatusConflict, codeSuperseded, err.Error())
		case r.Context().Err() != nil:
			reply(w, http.StatusServiceUnavailable, codeRejected, err.Error())
		default:
			reply(w, http.StatusUnprocessableEntity, codeRejected, err.Error())
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) authorized(header string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	return ok && len(h.token) > 0 && subtle.ConstantTimeCompare([]byte(tok), h.token) == 1
}

// readBody reads at most h.limit bytes, into a buffer of the announced size when there is one:
// the payload becomes the part's data, held by the origin without another copy.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if r.ContentLength > h.limit {
		return nil, http.StatusRequestEntityTooLarge, errors.New("body too large")
	}
	rd := http.MaxBytesReader(w, r.Body, h.limit)
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, errors.New("body too large")
		}
		return nil, http.StatusBadRequest, err
	}
	return body, 0, nil
}

var errSuperseded = errors.New("push: broadcast superseded or closed")

// apply makes the call a frame describes.
func (h *Handler) apply(ctx context.Context, op string, m *meta, payload []byte) error {
	if op == opOpen {
		bc, err := h.sink.Open(ctx, m.Stream)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.sessions[m.Stream.ChannelID] = &session{streamID: m.Stream.StreamID, bc: bc}
		h.mu.Unlock()
		return nil
	}
	bc, err := h.broadcast(ctx, m.Stream, op == opClose)
	if err != nil || bc == nil {
		return err
	}
	switch op {
	case opInit:
		return bc.Init(ctx, *m.Rendition, payload)
	case opPart:
		p := *m.Part
		p.Data = payload
		return bc.Part(ctx, m.Name, p)
	default: // opClose
		return bc.Close(ctx)
	}
}

// broadcast finds the session of s. With no session for the channel (the origin process
// restarted), it opens one, so that publishing resumes without the publisher noticing. A
// request for another stream than the channel's session, or for a closed one, is refused: a
// stale publisher must not take the channel back. closing marks the session closed and returns
// nil when it already is.
func (h *Handler) broadcast(ctx context.Context, s media.Stream, closing bool) (media.Broadcast, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sess := h.sessions[s.ChannelID]
	switch {
	case sess == nil && closing:
		return nil, nil
	case sess == nil:
		bc, err := h.sink.Open(ctx, s)
		if err != nil {
			return nil, err
		}
		sess = &session{streamID: s.StreamID, bc: bc}
		h.sessions[s.ChannelID] = sess
	case sess.streamID != s.StreamID:
		return nil, errSuperseded
	case sess.closed && closing:
		return nil, nil
	case sess.closed:
		return nil, errSuperseded
	}
	if closing {
		sess.closed = true
	}
	return sess.bc, nil
}

func reply(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(errHeader, code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
