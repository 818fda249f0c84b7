// Package loopback turns an http.Handler into an http.RoundTripper, so a role calls an
// in-process neighbour (the origin, under `serve`) through the same client code it uses for a
// remote one. Responses stream: the body delivers bytes as the handler writes and flushes them.
package loopback

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Transport serves requests with Handler instead of the network.
type Transport struct {
	Handler http.Handler
}

// RoundTrip runs the handler in a goroutine and returns as soon as it writes its header (or
// returns). Cancelling the request's context ends the handler's context and the body.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &writer{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	r := req.Clone(req.Context())
	if r.Body == nil {
		r.Body = http.NoBody
	}
	if r.RequestURI == "" {
		r.RequestURI = r.URL.RequestURI()
	}
	if r.RemoteAddr == "" {
		r.RemoteAddr = "127.0.0.1:0"
	}
	go func() {
		defer func() {
			w.writeHeader(http.StatusOK) // a handler that wrote nothing answered 200
			pw.Close()
		}()
		t.Handler.ServeHTTP(w, r)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	resp := &http.Response{
		Status:        http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		resp.ContentLength = n
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		go func() { _, _ = io.Copy(io.Discard, pr) }()
	}
	return resp, nil
}

// writer is the handler's side: headers are fixed at the first write, bytes go down the pipe.
type writer struct {
	header http.Header
	sent   http.Header
	status int
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *writer) Header() http.Header { return w.header }

func (w *writer) WriteHeader(status int) { w.writeHeader(status) }

func (w *writer) writeHeader(status int) {
	w.once.Do(func() {
		w.status = status
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *writer) Write(p []byte) (int, error) {
	w.writeHeader(http.StatusOK)
	return w.pw.Write(p)
}

// Flush is a no-op: every Write already reaches the reader, which is what flushing promises.
func (w *writer) Flush() {}
