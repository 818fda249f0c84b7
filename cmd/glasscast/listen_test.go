package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
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
