package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// bodyLimit bounds request bodies on the shared listeners, where nothing is authenticated
// before a body is read: only the API takes one, of at most max bytes (none when this process
// has no API), sent within timeout of the headers.
type bodyLimit struct {
	max     int64
	timeout time.Duration
	refuse  fasthttp.RequestHandler // answers a body over max as the API does; nil: a plain 413
	log     *slog.Logger
}

// config is fasthttp's HeaderReceived. A request with a body gets timeout to send it, and
// fasthttp reads ahead at most one byte of it before the handler runs (a larger limit reads
// ahead up to 8 KB per connection, and blocks on it): buffer reads the rest, as it arrives.
func (b bodyLimit) config(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if cl := h.ContentLength(); cl == 0 || cl == -2 { // -2: no body framing, so no body
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: b.timeout, MaxRequestBodySize: 1}
}

// buffer reads a streamed request body into memory for the net/http handlers, up to max
// bytes, growing with what arrives rather than with what was announced. It answers the
// request itself and reports false when the body is too large or does not arrive in time.
func (b bodyLimit) buffer(ctx *fasthttp.RequestCtx) bool {
	if int64(ctx.Request.Header.ContentLength()) > b.max {
		b.tooLarge(ctx)
		return false
	}
	body, err := io.ReadAll(io.LimitReader(ctx.RequestBodyStream(), b.max+1))
	if err != nil {
		b.parseError(ctx, fmt.Errorf("reading request body: %w", err))
		ctx.SetConnectionClose()
		return false
	}
	if int64(len(body)) > b.max {
		b.tooLarge(ctx)
		return false
	}
	ctx.Request.SetBodyRaw(body)
	return true
}

// tooLargeDrainFor and tooLargeDrainMax bound what is read and dropped after a 413.
const (
	tooLargeDrainFor = time.Second
	tooLargeDrainMax = 8 << 20
)

func (b bodyLimit) tooLarge(ctx *fasthttp.RequestCtx) {
	ctx.Request.ResetBody() // unread, and left so: the connection closes after the answer
	// A client still sending its body would meet a reset if the connection closed with that
	// body unread, and lose the 413 it was answered; so what it sends for a moment more is read
	// and dropped (a small buffer each, never the announced size), then the connection closes.
	// (fasthttp runs no hijack handler on a connection marked to close, so it is not marked.)
	ctx.Hijack(func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(tooLargeDrainFor))
		buf := make([]byte, 1024)
		for n := 0; n < tooLargeDrainMax; {
			m, err := c.Read(buf)
			n += m
			if err != nil {
				return
			}
		}
	})
	if b.refuse == nil {
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	} else {
		b.refuse(ctx)
	}
	// The API's answer says Connection: close (right for net/http); here the hijack closes it.
	ctx.Response.Header.ResetConnectionClose()
}

// parseError is fasthttp's ErrorHandler (a request it could not read), also used when a
// body does not arrive: the answers of fasthttp's default, logged with the client's address.
func (b bodyLimit) parseError(ctx *fasthttp.RequestCtx, err error) {
	status, msg := fasthttp.StatusBadRequest, "Error when parsing request"
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		status, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "Too big request header"
	case errors.As(err, &ne) && ne.Timeout():
		status, msg = fasthttp.StatusRequestTimeout, "Request timeout"
	}
	b.log.Debug("http request refused", "remote", ctx.RemoteAddr().String(), "status", status, "err", err)
	ctx.Error(msg, status)
}

// deadline gives a net/http request that has a body timeout to send it, and lifts the
// deadline once the body is read, so that neither a slow handler nor, on HTTP/1.1, the
// server's wait for the client's next request inherits it. Requests without a body (playback,
// blocking playlist reloads, chat WebSocket upgrades) get none.
func (b bodyLimit) deadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(b.timeout)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body ends.
type deadlineBody struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (d *deadlineBody) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if err == io.EOF {
		d.once.Do(d.lift)
	}
	return n, err
}

// slogPrintf is fasthttp's Logger on the node's log. Errors on a connection (a client that
// sent garbage or went away) are the client's, so debug; the rest (accept errors) warn.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(format, "error when serving connection") {
		l.log.Debug("http connection error", "err", msg)
		return
	}
	l.log.Warn("http server", "err", msg)
}
