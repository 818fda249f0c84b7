package origin_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"glasscast/origin"
	"glasscast/origin/origintest"
)

// chunk is what a streaming reader received, and when.
type chunk struct {
	at   time.Time
	data []byte
	err  error
}

// readChunks reads body in the background, reporting every read.
func readChunks(body io.ReadCloser) <-chan chunk {
	ch := make(chan chunk, 64)
	go func() {
		defer close(ch)
		defer body.Close()
		for {
			buf := make([]byte, 256<<10)
			n, err := body.Read(buf)
			if n > 0 {
				ch <- chunk{at: time.Now(), data: buf[:n]}
			}
			if err != nil {
				if err != io.EOF {
					ch <- chunk{err: err}
				}
				return
			}
		}
	}()
	return ch
}

// receive collects n bytes from ch and returns them with the time the last one arrived.
func receive(t *testing.T, ch <-chan chunk, n int) ([]byte, time.Time) {
	t.Helper()
	var got []byte
	var at time.Time
	timeout := time.After(2 * time.Second)
	for len(got) < n {
		select {
		case c, ok := <-ch:
			if !ok || c.err != nil {
				t.Fatalf("stream ended after %d of %d bytes: %v", len(got), n, c.err)
			}
			got, at = append(got, c.data...), c.at
		case <-timeout:
			t.Fatalf("received %d of %d bytes", len(got), n)
		}
	}
	return got, at
}

// TestPrefetchStreaming plays the IVS player: it reads the segment in progress as it grows and
// the next one as soon as it starts, and each part's bytes must reach it within milliseconds of
// the Part call.
func TestPrefetchStreaming(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	steps(t, s, 1) // segment 2 has part 0
	per := s.pub.PartsPerSegment()
	ctx := context.Background()

	resp, err := http.Get(s.path("720p", "seg2.m4s"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 {
		t.Fatalf("segment in progress: status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	stream := readChunks(resp.Body)
	_, _, part0 := get(t, s.path("720p", partName(2, 0)))
	streamed, _ := receive(t, stream, len(part0))

	// The next segment is held until it starts.
	next := make(chan *http.Response, 1)
	nextURL := s.path("720p", "seg3.m4s")
	go func() {
		r, err := http.Get(nextURL)
		if err != nil {
			r = nil
		}
		next <- r
	}()

	var worst time.Duration
	for i := 1; i < per; i++ {
		start := time.Now()
		if err := s.pub.Step(ctx); err != nil {
			t.Fatal(err)
		}
		_, _, p := get(t, s.path("720p", partName(2, i)))
		got, at := receive(t, stream, len(p))
		if !bytes.Equal(got, p) {
			t.Fatalf("part %d streamed differently", i)
		}
		streamed = append(streamed, got...)
		worst = max(worst, at.Sub(start))
	}
	t.Logf("slowest part delivery: %v after Part", worst)
	if worst > 50*time.Millisecond {
		t.Errorf("a part reached the streaming reader %v after Part", worst)
	}
	if c, ok := <-stream; ok {
		t.Fatalf("stream continued after the last part: %+v", c)
	}
	_, h, whole := get(t, s.path("720p", "seg2.m4s"))
	if !bytes.Equal(streamed, whole) || h.Get("Content-Length") == "" {
		t.Fatalf("streamed %d bytes, complete segment %d bytes (Content-Length %q)", len(streamed), len(whole), h.Get("Content-Length"))
	}

	select {
	case <-next:
		t.Fatal("the next segment answered before it started")
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.pub.Step(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-next:
		if r == nil || r.StatusCode != http.StatusOK {
			t.Fatalf("next segment: %+v", r)
		}
		ch := readChunks(r.Body)
		_, _, p := get(t, s.path("720p", partName(3, 0)))
		if got, _ := receive(t, ch, len(p)); !bytes.Equal(got, p) {
			t.Fatal("next segment's first part differs")
		}
		_ = s.pub.Close(ctx) // ends the segment and with it the stream
		for c := range ch {
			if c.err != nil {
				t.Fatalf("stream of a segment ended by Close: %v", c.err)
			}
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the next segment was not released when it started")
	}
}

func TestPrefetchOnlyNearTheLiveEdge(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	steps(t, s, 1)
	if status, _, _ := get(t, s.path("720p", "seg4.m4s")); status != http.StatusNotFound {
		t.Errorf("a segment two ahead: %d, want 404", status)
	}
	status, h, body := do(t, http.MethodHead, s.path("720p", "seg2.m4s"))
	if status != http.StatusOK || len(body) != 0 || h.Get("Content-Type") != "video/mp4" {
		t.Errorf("HEAD of the segment in progress: %d %v", status, h)
	}

	normal := stepped(t, origin.Config{}, origintest.Config{ChannelID: "normal", Normal: true, Backfill: 2})
	if status, _, _ := get(t, normal.path("720p", "seg2.m4s")); status != http.StatusNotFound {
		t.Errorf("NORMAL stream, segment not started: %d, want 404", status)
	}
}
