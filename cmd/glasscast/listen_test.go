package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
