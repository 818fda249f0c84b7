package origin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/origintest"
	"glasscast/origin/playlist"
)

const (
	testRegion  = "us-east-1"
	testAccount = "000000000000"
)

// liveStream is an origin behind a real HTTP server, fed by a synthetic publisher.
type liveStream struct {
	origin *origin.Origin
	srv    *httptest.Server
	pub    *origintest.Publisher

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// startStream opens the publisher's broadcast (and its backfill) on a new origin.
func startStream(t *testing.T, cfg origin.Config, pcfg origintest.Config) *liveStream {
	t.Helper()
	o := origin.New(cfg)
	srv := httptest.NewServer(o)
	s := &liveStream{origin: o, srv: srv, pub: origintest.New(o, pcfg)}
	t.Cleanup(func() {
		s.stop()
		srv.Close()
		_ = o.Close()
	})
	if err := s.pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// run starts publishing in real time.
func (s *liveStream) run() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- s.pub.Run(ctx) }()
}

// stop pauses publishing; the broadcast stays open.
func (s *liveStream) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	return <-s.done
}

func (s *liveStream) channel() string { return s.pub.Stream().ChannelID }

// url is the multivariant playlist URL, with a viewer token.
func (s *liveStream) url() string {
	return s.srv.URL + media.MultivariantPath(testRegion, testAccount, s.channel()) + "?token=abc"
}

// path is the URL of a rendition's file.
func (s *liveStream) path(rendition, file string) string {
	return s.srv.URL + media.PlaybackPrefix + media.PlaybackName(testRegion, testAccount, s.channel()) + "/" + rendition + "/" + file
}

// get fetches u and returns status, headers and body.
func get(t *testing.T, u string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	return do(t, http.MethodGet, u, header...)
}

func do(t *testing.T, method, u string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// fakeClock is a settable clock for retention and linger.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newServer serves o over HTTP for the test and returns its base URL.
func newServer(t *testing.T, o *origin.Origin) string {
	t.Helper()
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return srv.URL
}

func partName(msn uint64, index int) string { return playlist.PartName(msn, index) }

func fmtSscan(s string, v any) (int, error) { return fmt.Sscan(s, v) }

// fetch is get for goroutines other than the test's own.
func fetch(u string) (int, []byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}
