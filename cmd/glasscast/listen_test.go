package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The connection caps are shared by the HTTP and HTTPS listeners, and a connection's place is
// freed when it closes, on HTTP/1.1 (fasthttp) and on HTTP/2 (net/http) alike: three rounds
// at the cap would otherwise find it full.
func TestListenerConnCaps(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTPListen, cfg.HTTPSListen, cfg.DataDir = benchAddr(t), benchAddr(t), t.TempDir()
	cfg.HTTPMaxConnsPerIP = 2
	n := &node{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), mux: http.NewServeMux(),
		fastExt: map[string]fasthttp.RequestHandler{}}
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv, err := n.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown()

	plain := func() (net.Conn, error) {
		c, err := net.Dial("tcp", cfg.HTTPListen)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		resp.Body.Close()
		return c, nil
	}
	h2 := func() (*http.Transport, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + cfg.HTTPSListen + "/healthz")
		if err != nil {
			tr.CloseIdleConnections()
			return nil, err
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("HTTPS spoke %s", resp.Proto)
		}
		return tr, nil
	}
	for round := 0; round < 3; round++ {
		// The previous round's closes reach the server asynchronously.
		var c net.Conn
		var tr *http.Transport
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c == nil {
				c, err = plain()
			}
			if c != nil && tr == nil {
				tr, err = h2()
			}
			if c != nil && tr != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: places not freed: %v", round, err)
			}
		}
		if extra, err := plain(); err == nil {
			extra.Close()
			t.Fatalf("round %d: a third connection from one address was served with a cap of 2", round)
		}
		c.Close()
		tr.CloseIdleConnections()
	}
}

// A handler that panics costs its request a 500, not the node: on the HTTP listener a native
// fasthttp handler and a net/http one through the adaptor (either panic would otherwise end
// the test binary), and on HTTPS over HTTP/2, where net/http alone would reset the stream.
// The listeners go on serving, and the log has the panic with its stack.
func TestListenerSurvivesPanics(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTPListen, cfg.HTTPSListen, cfg.DataDir = benchAddr(t), benchAddr(t), t.TempDir()
	var logs syncBuffer
	n := &node{cfg: cfg, log: slog.New(slog.NewTextHandler(&logs, nil)), mux: http.NewServeMux(),
		fastExt: map[string]fasthttp.RequestHandler{"/fast-boom": func(*fasthttp.RequestCtx) { panic("fast boom") }}}
	n.mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("net/http boom") })
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv, err := n.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, base := range []string{"http://" + cfg.HTTPListen, "https://" + cfg.HTTPSListen} {
		for _, path := range []string{"/boom", "/fast-boom", "/boom"} {
			if base[:5] == "https" && path == "/fast-boom" {
				continue // fasthttp serves only the HTTP listener
			}
			if code, _ := get(base + path); code != http.StatusInternalServerError {
				t.Errorf("%s%s: status %d, want 500", base, path, code)
			}
		}
		if code, body := get(base + "/healthz"); code != http.StatusOK || body != "ok\n" {
			t.Errorf("%s/healthz after the panics: %d %q", base, code, body)
		}
	}
	for _, want := range []string{`panic="net/http boom"`, `panic="fast boom"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	// Each of the five panics is logged once, with the stack down to its handler.
	if got := strings.Count(logs.String(), "handler panicked"); got != 5 {
		t.Errorf("%d panics logged, want 5:\n%s", got, logs.String())
	}
	if got := strings.Count(logs.String(), "listen_test.go"); got < 5 {
		t.Errorf("%d stacks reach the handler, want 5:\n%s", got, logs.String())
	}
}

// syncBuffer is a log sink for handlers running on the servers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A client that stops reading holds a response for http.writeTimeout at most: on HTTP/1.1
// (fasthttp) a connection that never reads, and on HTTP/2 a connection that grants no
// flow-control window, where each stream held its handler for ever before. HTTP/2 also offers
// at most 100 streams a connection.
func TestListenerWriteTimeout(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTPListen, cfg.HTTPSListen, cfg.DataDir = benchAddr(t), benchAddr(t), t.TempDir()
	cfg.HTTPWriteTimeout = time.Second
	n := &node{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), mux: http.NewServeMux(),
		fastExt: map[string]fasthttp.RequestHandler{}}
	var active atomic.Int64
	n.mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer active.Add(-1)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if err := http.NewResponseController(w).Flush(); err != nil {
				return
			}
		}
	})
	srv, err := n.listen()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown()
	settle := func(what string, want int64) {
		t.Helper()
		for deadline := time.Now().Add(6 * time.Second); active.Load() != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d handlers still writing, want %d", what, active.Load(), want)
			}
		}
	}

	c, err := net.Dial("tcp", cfg.HTTPListen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	settle("HTTP/1.1, streaming", 1)
	settle("HTTP/1.1, the client not reading", 0)

	tc, err := tls.Dial("tcp", cfg.HTTPSListen, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_, _ = io.WriteString(tc, http2.ClientPreface)
	fr := http2.NewFramer(tc, tc)
	var writing sync.Mutex // a Framer's writes share one buffer: the reader acks from its own goroutine
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	streamsOffered := make(chan uint32, 1)
	go func() { // acknowledge settings, never grant a window
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
				if v, ok := sf.Value(http2.SettingMaxConcurrentStreams); ok {
					streamsOffered <- v
				}
				writing.Lock()
				_ = fr.WriteSettingsAck()
				writing.Unlock()
			}
		}
	}()
	const streams = 5
	for i := range streams {
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "h"}, {":path", "/stream"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		writing.Lock()
		err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		writing.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	settle("HTTP/2, streaming", streams)
	settle("HTTP/2, no window granted", 0)
	select {
	case v := <-streamsOffered:
		if v != maxStreams {
			t.Errorf("HTTP/2 offers %d streams a connection, want %d", v, maxStreams)
		}
	default:
		t.Error("HTTP/2 settings name no stream limit")
	}
}
