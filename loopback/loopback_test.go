package loopback

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestStreamsAsTheHandlerFlushes(t *testing.T) {
	step := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", r.URL.Query().Get("q"))
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("one"))
		w.(http.Flusher).Flush()
		<-step
		_, _ = w.Write([]byte("two"))
	})
	c := &http.Client{Transport: &Transport{Handler: h}}
	resp, err := c.Get("http://origin/x?q=v")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Test") != "v" {
		t.Fatalf("status %d header %q", resp.StatusCode, resp.Header.Get("X-Test"))
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "one" {
		t.Fatalf("first chunk %q %v: bytes must arrive before the handler returns", buf, err)
	}
	close(step)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "two" {
		t.Fatalf("rest %q", rest)
	}
}

func TestCancelEndsTheHandler(t *testing.T) {
	done := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(done)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://origin/", nil)
	if _, err := (&Transport{Handler: h}).RoundTrip(req); err == nil {
		t.Fatal("a handler that never answers must fail with the context")
	}
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
}
