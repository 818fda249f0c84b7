package push_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/origintest"
	"glasscast/origin/push"
)

const token = "s3cret"

// tee publishes every call to several sinks, so that two origins receive identical input.
type tee []media.Sink

func (t tee) Open(ctx context.Context, s media.Stream) (media.Broadcast, error) {
	var bs teeBroadcast
	for _, sink := range t {
		b, err := sink.Open(ctx, s)
		if err != nil {
			return nil, err
		}
		bs = append(bs, b)
	}
	return bs, nil
}

type teeBroadcast []media.Broadcast

func (t teeBroadcast) Init(ctx context.Context, r media.Rendition, init []byte) error {
	for _, b := range t {
		if err := b.Init(ctx, r, init); err != nil {
			return err
		}
	}
	return nil
}

func (t teeBroadcast) Part(ctx context.Context, rendition string, p media.Part) error {
	for _, b := range t {
		if err := b.Part(ctx, rendition, p); err != nil {
			return err
		}
	}
	return nil
}

func (t teeBroadcast) Close(ctx context.Context) error {
	for _, b := range t {
		if err := b.Close(ctx); err != nil {
			return err
		}
	}
	return nil
}

// remoteOrigin is an origin reachable through a push Handler, and its playback server.
type remoteOrigin struct {
	origin   *origin.Origin
	push     *httptest.Server
	playback *httptest.Server
}

func newRemote(t *testing.T, cfg push.HandlerConfig) *remoteOrigin {
	t.Helper()
	o := origin.New(origin.Config{DateRanges: true})
	mux := http.NewServeMux()
	mux.Handle("/_push/", push.NewHandler(o, cfg))
	r := &remoteOrigin{origin: o, push: httptest.NewServer(mux), playback: httptest.NewServer(o)}
	t.Cleanup(func() {
		r.push.Close()
		r.playback.Close()
		_ = o.Close()
	})
	return r
}

func (r *remoteOrigin) client(cfg push.ClientConfig) *push.Client {
	cfg.URL = r.push.URL + "/_push"
	if cfg.Token == "" {
		cfg.Token = token
	}
	return push.NewClient(cfg)
}

func fetch(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestRoundTripEqualsInProcess publishes one broadcast to an origin in process and, through
// Client and Handler over HTTP, to another: every playlist and object must be byte-identical.
func TestRoundTripEqualsInProcess(t *testing.T) {
	remote := newRemote(t, push.HandlerConfig{Token: token})
	local := origin.New(origin.Config{DateRanges: true})
	defer local.Close()
	localSrv := httptest.NewServer(local)
	defer localSrv.Close()
	client := remote.client(push.ClientConfig{})
	defer client.CloseIdleConnections()

	pub := origintest.New(tee{local, client}, origintest.Config{Backfill: 14, CueEvery: 2})
	ctx := context.Background()
	if err := pub.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := pub.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Reconnect(ctx, true); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if err := pub.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	name := media.PlaybackPrefix + media.PlaybackName("us-east-1", "000000000000", "test")
	paths := []string{name + ".m3u8?token=t"}
	for _, r := range []string{"720p", "360p"} {
		for _, q := range []string{"", "?_HLS_skip=YES", "?_HLS_skip=v2&token=t", "?_HLS_msn=15&_HLS_part=1"} {
			paths = append(paths, name+"/"+r+"/index.m3u8"+q)
		}
		paths = append(paths, name+"/"+r+"/init0.mp4", name+"/"+r+"/init1.mp4")
		// Segments 2 to 15 are complete, 16 is in progress (streaming it would wait for it).
		for msn := uint64(2); msn <= 16; msn++ {
			if msn < 16 {
				paths = append(paths, fmt.Sprintf("%s/%s/seg%d.m4s", name, r, msn))
			}
			for i := range 5 {
				if msn == 16 && i == 2 {
					continue // the hinted part: requests for it wait
				}
				paths = append(paths, fmt.Sprintf("%s/%s/part%d.%d.m4s", name, r, msn, i))
			}
		}
	}
	found := 0
	for _, p := range paths {
		ls, lb := fetch(t, localSrv.URL+p)
		rs, rb := fetch(t, remote.playback.URL+p)
		if ls != rs || !bytes.Equal(lb, rb) {
			t.Fatalf("%s: in process %d (%d bytes), over push %d (%d bytes)\n%s\n---\n%s", p, ls, len(lb), rs, len(rb), lb, rb)
		}
		if ls == http.StatusOK {
			found++
		}
	}
	if found < len(paths)*3/4 {
		t.Fatalf("only %d of %d paths exist: the comparison proves little", found, len(paths))
	}

	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, body := fetch(t, remote.playback.URL+name+"/720p/index.m3u8")
	if !strings.Contains(string(body), "#EXT-X-ENDLIST") {
		t.Fatal("Close did not travel")
	}
}

func TestAuthentication(t *testing.T) {
	remote := newRemote(t, push.HandlerConfig{Token: token})
	stream := media.Stream{ChannelID: "c", StreamID: "s", TargetDuration: time.Second}
	for _, bad := range []string{"wrong", token + "x", " " + token} {
		c := remote.client(push.ClientConfig{Token: bad})
		if _, err := c.Open(context.Background(), stream); !errors.Is(err, push.ErrUnauthorized) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	open := newRemote(t, push.HandlerConfig{})
	if _, err := open.client(push.ClientConfig{Token: "anything"}).Open(context.Background(), stream); !errors.Is(err, push.ErrUnauthorized) {
		t.Errorf("handler without a token accepted a request: %v", err)
	}
}

func TestHandlerRejects(t *testing.T) {
	remote := newRemote(t, push.HandlerConfig{Token: token, MaxBodyBytes: 1 << 10})
	post := func(op string, body []byte, contentLength int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, remote.push.URL+"/_push/"+op, bytes.NewReader(body))
		req.ContentLength = contentLength
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Glasscast-Push-Error")
	}
	big := make([]byte, 2<<10)
	if status, _ := post("part", big, int64(len(big))); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", status)
	}
	if status, _ := post("part", big, -1); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body: %d", status)
	}
	if status, code := post("part", []byte("GCP1garbage"), 11); status != http.StatusBadRequest || code != "bad-request" {
		t.Errorf("garbage: %d %s", status, code)
	}
	req, _ := http.NewRequest(http.MethodGet, remote.push.URL+"/_push/open", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}

	c := remote.client(push.ClientConfig{})
	ctx := context.Background()
	bc, err := c.Open(ctx, media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second, PartTarget: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Part(ctx, "nope", media.Part{Duration: time.Millisecond, Data: []byte{1}}); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("unknown rendition: %v", err)
	}
	if err := bc.Init(ctx, media.Rendition{Name: "r"}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	if err := bc.Part(ctx, "r", media.Part{MSN: 0, Index: 0, Duration: time.Millisecond}); !errors.Is(err, push.ErrRejected) {
		t.Errorf("empty part: %v", err)
	}
	// A newer stream takes the channel; the old one is refused from then on.
	if _, err := c.Open(ctx, media.Stream{ChannelID: "c", StreamID: "s2", TargetDuration: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := bc.Init(ctx, media.Rendition{Name: "r"}, []byte("init")); !errors.Is(err, push.ErrSuperseded) {
		t.Errorf("stale stream: %v", err)
	}
}

// TestRetries sends through a front that fails the first attempts of every request.
func TestRetries(t *testing.T) {
	remote := newRemote(t, push.HandlerConfig{Token: token})
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 != 0 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		r.URL.Host, r.URL.Scheme, r.RequestURI = strings.TrimPrefix(remote.push.URL, "http://"), "http", ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer flaky.Close()
	c := push.NewClient(push.ClientConfig{URL: flaky.URL + "/_push", Token: token, Backoff: time.Millisecond})
	pub := origintest.New(c, origintest.Config{Backfill: 1})
	if err := pub.Open(context.Background()); err != nil {
		t.Fatalf("with retries: %v", err)
	}
	none := push.NewClient(push.ClientConfig{URL: flaky.URL + "/_push", Token: token, Retries: -1})
	calls.Store(0)
	_, err := none.Open(context.Background(), media.Stream{ChannelID: "x", StreamID: "y", TargetDuration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("without retries: %v", err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	slow := push.NewClient(push.ClientConfig{URL: down.URL, Token: token, Retries: 100, Backoff: 5 * time.Millisecond})
	if _, err := slow.Open(ctx, media.Stream{ChannelID: "x", StreamID: "y", TargetDuration: time.Second}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retries past the deadline: %v", err)
	}
}

// TestOriginRestart: a new origin process knows no broadcast; the first part reopens it and
// the client restores the rendition's init on its own.
func TestOriginRestart(t *testing.T) {
	o1 := origin.New(origin.Config{})
	defer o1.Close()
	o2 := origin.New(origin.Config{})
	defer o2.Close()
	var current atomic.Pointer[push.Handler]
	current.Store(push.NewHandler(o1, push.HandlerConfig{Token: token}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().ServeHTTP(w, r) }))
	defer srv.Close()
	pub := origintest.New(push.NewClient(push.ClientConfig{URL: srv.URL, Token: token}), origintest.Config{Backfill: 2})
	ctx := context.Background()
	if err := pub.Open(ctx); err != nil {
		t.Fatal(err)
	}
	current.Store(push.NewHandler(o2, push.HandlerConfig{Token: token}))
	for range 5 {
		if err := pub.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pb := httptest.NewServer(o2)
	defer pb.Close()
	status, body := fetch(t, pb.URL+media.PlaybackPrefix+media.PlaybackName("r", "a", "test")+"/720p/index.m3u8")
	if status != http.StatusOK || !strings.Contains(string(body), "seg2.m4s") {
		t.Fatalf("restarted origin: %d\n%s", status, body)
	}
}
