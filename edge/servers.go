package edge

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"glasscast/auth"
)

// ServeFastHTTP answers a playback request on fasthttp's HTTP/1.1 server.
func (e *Edge) ServeFastHTTP(ctx *fasthttp.RequestCtx) {
	r := request{
		method:     string(ctx.Method()),
		path:       string(ctx.Path()),
		rawQuery:   string(ctx.URI().QueryString()), // as sent: QueryArgs would parse it and encode it again
		origin:     string(ctx.Request.Header.Peek("Origin")),
		acceptGzip: ctx.Request.Header.HasAcceptEncoding("gzip"),
		userAgent:  string(ctx.UserAgent()),
		peerIP:     ctx.RemoteIP(),
		asserted:   string(ctx.Request.Header.Peek(auth.ViewerAddrHeader)),
		addrKey:    e.cfg.ViewerAddrKey,
	}
	if h := e.cfg.Countries.Header; h != "" {
		r.country = string(ctx.Request.Header.Peek(h))
	}
	// fasthttp does not report a viewer hanging up while the handler waits; waits are bounded
	// by the upstream timeouts instead.
	wctx := newWaitContext(time.Now().Add(e.cfg.BlockingTimeout + e.cfg.UpstreamTimeout))
	resp := e.serve(wctx, r)
	wctx.release()
	// The handler's header names are canonical already, so they go in through SetCanonical,
	// which still strips line breaks from each value (an echoed Origin) but skips Set's name
	// check and its second copy and scan of the value: Set took 7 % of serve's CPU at 1,500
	// viewers, 2.9 µs a response.
	for _, h := range resp.headers {
		ctx.Response.Header.SetCanonical(bytesOf(h[0]), bytesOf(h[1]))
	}
	ctx.SetStatusCode(resp.status)
	if resp.obj == nil {
		// Not copied: a body is either built for this response or a complete cached object,
		// which nothing changes any more. A copy of each 60 KB part per viewer per part was
		// the handler's largest cost when a part's waiters are all answered at once.
		ctx.Response.SetBodyRaw(resp.body)
		return
	}
	o := resp.obj
	if r.method == http.MethodHead {
		return
	}
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		sctx, cancel := context.WithTimeout(context.Background(), e.cfg.BlockingTimeout+e.cfg.UpstreamTimeout)
		defer cancel()
		_ = o.stream(sctx, func(p []byte) error {
			if _, err := w.Write(p); err != nil {
				return err
			}
			return w.Flush()
		})
	})
}

// bytesOf is s's bytes, not copied: for fasthttp's setters, which copy what they are given
// and change none of it.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// ServeHTTP answers a playback request on net/http (the HTTPS listener with HTTP/2).
func (e *Edge) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host, _, _ := net.SplitHostPort(req.RemoteAddr)
	r := request{
		method:     req.Method,
		path:       req.URL.Path,
		rawQuery:   req.URL.RawQuery,
		origin:     req.Header.Get("Origin"),
		acceptGzip: acceptsGzip(req.Header.Get("Accept-Encoding")),
		userAgent:  req.UserAgent(),
		peerHost:   host,
		asserted:   req.Header.Get(auth.ViewerAddrHeader),
		addrKey:    e.cfg.ViewerAddrKey,
	}
	if h := e.cfg.Countries.Header; h != "" {
		r.country = req.Header.Get(h)
	}
	resp := e.serve(req.Context(), r)
	for _, h := range resp.headers {
		w.Header().Set(h[0], h[1])
	}
	if resp.obj == nil {
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
		w.WriteHeader(resp.status)
		if req.Method != http.MethodHead {
			_, _ = w.Write(resp.body)
		}
		return
	}
	w.WriteHeader(resp.status)
	if req.Method == http.MethodHead {
		return
	}
	fl, _ := w.(http.Flusher)
	_ = resp.obj.stream(req.Context(), func(p []byte) error {
		if _, err := w.Write(p); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	})
}

func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(part, ";")
		if strings.TrimSpace(name) == "gzip" && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
