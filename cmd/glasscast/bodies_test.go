package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"glasscast/control"
)

// listenAPI runs listen() with a control API that has no store: enough for what the
// listener and the API refuse before an operation runs.
func listenAPI(t *testing.T, bodyTimeout time.Duration) string {
	t.Helper()
	addr := benchAddr(t)
	cfg := defaultConfig()
	cfg.HTTPListen, cfg.HTTPSListen, cfg.HTTPBodyTimeout = addr, "", bodyTimeout
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := control.New(control.Config{Region: "us-east-1", Account: "000000000000",
		Secret: func(string) (string, bool) { return "", false }}, nil, nil, nil, log)
	n := &node{cfg: cfg, log: log, mux: http.NewServeMux(), fastExt: map[string]fasthttp.RequestHandler{}}
	n.api, n.apiMatch = api, api.Handles
	srv, err := n.listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.shutdown)
	return addr
}

// exchange writes a raw request and reads the answer and whether the server then closed.
func exchange(t *testing.T, addr, req string) (*http.Response, string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * tooLargeDrainFor)) // a close follows the answer, after at most the drain of a refused body
	_, err = br.ReadByte()
	return resp, string(b), err == io.EOF
}

func TestListenerBodies(t *testing.T) {
	addr := listenAPI(t, 500*time.Millisecond)
	head := "POST /ListChannels HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
	t.Run("announced over the API's limit", func(t *testing.T) {
		resp, body, closed := exchange(t, addr, head+fmt.Sprintf("Content-Length: %d\r\n\r\n{", 4<<20))
		if resp.StatusCode != 413 || resp.Header.Get("x-amzn-ErrorType") != "RequestEntityTooLargeException" || !strings.Contains(body, `"message"`) || !closed {
			t.Fatalf("%s %q %s closed=%v", resp.Status, resp.Header.Get("x-amzn-ErrorType"), body, closed)
		}
	})
	t.Run("chunked past the API's limit", func(t *testing.T) {
		chunk := strings.Repeat("a", 64<<10)
		var b strings.Builder
		b.WriteString(head + "Transfer-Encoding: chunked\r\n\r\n")
		for i := 0; i < 17; i++ { // 17 x 64 KiB > 1 MiB
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		b.WriteString("0\r\n\r\n")
		resp, _, _ := exchange(t, addr, b.String())
		if resp.StatusCode != 413 || resp.Header.Get("x-amzn-ErrorType") != "RequestEntityTooLargeException" {
			t.Fatalf("%s %q", resp.Status, resp.Header.Get("x-amzn-ErrorType"))
		}
	})
	t.Run("a body within the limit reaches the API", func(t *testing.T) {
		resp, _, _ := exchange(t, addr, head+"Content-Length: 2\r\n\r\n{}")
		if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
			t.Fatalf("%s %q", resp.Status, resp.Header.Get("x-amzn-ErrorType"))
		}
	})
	t.Run("a body that does not arrive", func(t *testing.T) {
		start := time.Now()
		resp, _, closed := exchange(t, addr, head+"Content-Length: 100\r\n\r\n{")
		if resp.StatusCode != http.StatusRequestTimeout || !closed {
			t.Fatalf("%s closed=%v", resp.Status, closed)
		}
		t.Logf("answered after %s", time.Since(start).Round(time.Millisecond))
	})
	t.Run("over the limit on another path", func(t *testing.T) {
		resp, _, closed := exchange(t, addr, fmt.Sprintf("PUT /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n0123456789", 2<<20))
		if resp.StatusCode != 413 || !closed {
			t.Fatalf("%s closed=%v", resp.Status, closed)
		}
	})
}
