package events

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"glasscast/bus"
	"glasscast/redact"
)

func TestEnvelopeShapes(t *testing.T) {
	env := Envelope{Region: "us-west-2", Account: "123456789012"}
	at := time.Date(2026, 11, 5, 8, 7, 10, 500, time.UTC)
	ev, err := env.Stream(StreamChange{DetailType: StreamStateChange, Name: "Session Created", ChannelID: "AbCdef1G2hij",
		ChannelName: "my-channel", StreamID: "st-1", Time: at})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	b, _ := json.Marshal(ev)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"version": "0", "detail-type": "IVS Stream State Change", "source": "aws.ivs",
		"account": "123456789012", "time": "2026-11-05T08:07:10Z", "region": "us-west-2"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if len(m) != 9 {
		t.Errorf("envelope has %d fields, want exactly 9: %v", len(m), m)
	}
	if r := m["resources"].([]any); len(r) != 1 || r[0] != "arn:aws:ivs:us-west-2:123456789012:channel/AbCdef1G2hij" {
		t.Errorf("resources %v", r)
	}
	d := m["detail"].(map[string]any)
	if d["event_name"] != "Session Created" || d["channel_name"] != "my-channel" || d["stream_id"] != "st-1" {
		t.Errorf("detail %v", d)
	}
	if Subject(ev) != "glasscast.events.stream-state.AbCdef1G2hij" {
		t.Errorf("subject %s", Subject(ev))
	}

	rec, _ := env.Recording(RecordingChange{Status: "Recording End", ChannelID: "AbCdef1G2hij", StreamIDs: []string{"st-1", "st-2"}})
	var rd map[string]any
	_ = json.Unmarshal(rec.Detail, &rd)
	if _, has := rd["event_name"]; has || rd["recording_status"] != "Recording End" || rd["recording_status_reason"] != "" ||
		len(rd["recording_session_stream_ids"].([]any)) != 2 {
		t.Errorf("recording detail %v", rd)
	}
	start, _ := env.Recording(RecordingChange{Status: "Recording Start", ChannelID: "AbCdef1G2hij"})
	rd = nil
	_ = json.Unmarshal(start.Detail, &rd)
	if _, has := rd["recording_session_stream_ids"]; has {
		t.Errorf("Recording Start carries no stream list: %s", start.Detail)
	}
	lim, _ := env.Limit(LimitChange{LimitName: "Concurrent Broadcasts", LimitValue: 5, ExceededBy: 1, LimitUnit: "active streams"})
	if len(lim.Resources) != 0 || lim.Resources == nil || Subject(lim) != "glasscast.events.limit-breach._account" {
		t.Errorf("account-wide breach: resources %#v subject %s", lim.Resources, Subject(lim))
	}
	if _, err := env.Stream(StreamChange{DetailType: "IVS Nonsense"}); err == nil {
		t.Error("an unknown detail-type must be refused")
	}
}

func TestParseWebhooks(t *testing.T) {
	ws, err := ParseWebhooks(" https://a.example/h?token=x#types=stream-state|IVS Recording State Change&channels=AbC|Def , http://127.0.0.1:9/x")
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].URL != "https://a.example/h?token=x" || !slices.Equal(ws[0].DetailTypes, []string{RecordingStateChange, StreamStateChange}) ||
		!slices.Equal(ws[0].Channels, []string{"AbC", "Def"}) || ws[1].URL != "http://127.0.0.1:9/x" || len(ws[1].DetailTypes) != 0 {
		t.Fatalf("%+v", ws)
	}
	got := ws[0].filterSubjects()
	sort.Strings(got)
	want := []string{"glasscast.events.recording-state.AbC", "glasscast.events.recording-state.Def",
		"glasscast.events.stream-state.AbC", "glasscast.events.stream-state.Def"}
	if !slices.Equal(got, want) {
		t.Fatalf("filters %v", got)
	}
	if ws[0].durable() == ws[1].durable() || !strings.HasPrefix(ws[0].durable(), "webhook_") {
		t.Fatal("durable names must differ per webhook")
	}
	for _, bad := range []string{"ftp://x/y", "http://", "https://x/#types=nope", "https://x/#color=red", "https://x/#channels=a.b"} {
		if _, err := ParseWebhooks(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	if redact.URL("https://user:pw@h.example/p?token=s", "webhook") != "https://h.example/p" {
		t.Error(redact.URL("https://user:pw@h.example/p?token=s", "webhook"))
	}
}

func TestSignVerify(t *testing.T) {
	secret := NewSecret()
	now := time.Now()
	body := []byte(`{"a":1}`)
	sig := Sign(secret, "id-1", now, body)
	h := map[string]string{HeaderID: "id-1", HeaderTimestamp: strconv.FormatInt(now.Unix(), 10), HeaderSignature: "v1,bogus " + sig}
	get := func(k string) string { return h[k] }
	if err := Verify(secret, get, body, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if Verify(secret, get, []byte(`{"a":2}`), now, 5*time.Minute) == nil {
		t.Error("a changed body must fail")
	}
	if Verify(NewSecret(), get, body, now, 5*time.Minute) == nil {
		t.Error("another secret must fail")
	}
	if Verify(secret, get, body, now.Add(10*time.Minute), 5*time.Minute) == nil {
		t.Error("a stale timestamp must fail")
	}
}

// receiver is a real HTTP server that checks signatures and records events in arrival order.
type receiver struct {
	t      *testing.T
	secret string
	srv    *http.Server
	addr   string

	mu     sync.Mutex
	events []Event
	at     []time.Time
	bad    int
}

func startReceiver(t *testing.T, addr, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := Verify(r.secret, req.Header.Get, body, time.Now(), time.Minute); err != nil {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev Event
		if json.Unmarshal(body, &ev) != nil || ev.ID != req.Header.Get(HeaderID) {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.at = append(r.at, time.Now())
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	return r
}

func (r *receiver) stop() { _ = r.srv.Close() }

func (r *receiver) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *receiver) waitFor(n int, within time.Duration) []Event {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if evs := r.got(); len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver got %d events, want %d", len(r.got()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Webhook delivery against real NATS and a real HTTP receiver: signed, in order, retried
// while the receiver is down, and neither lost nor repeated when delivery restarts.
func TestWebhookDelivery(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: dir, Name: "events-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	pub, err := NewPublisher(ctx, b.JS, PublisherConfig{Envelope: Envelope{Region: "us-east-1", Account: "000000000000"}})
	if err != nil {
		t.Fatal(err)
	}
	secret := NewSecret()
	rcv := startReceiver(t, "127.0.0.1:0", secret)
	hooks, err := ParseWebhooks("http://" + rcv.addr + "/hook#types=stream-state")
	if err != nil {
		t.Fatal(err)
	}
	start := func() (context.CancelFunc, chan struct{}) {
		d, err := NewDeliverer(b.JS, DeliveryConfig{Webhooks: hooks, Secret: secret, MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = d.Run(dctx); close(done) }()
		return cancel, done
	}
	stopD, done := start()
	// The consumer exists once Run has created it; publish after that.
	waitConsumer(t, b, hooks[0])

	emit := func(ch, name string) time.Time {
		t0 := time.Now()
		pub.StreamEvent(ctx, StreamChange{DetailType: StreamStateChange, Name: name, ChannelID: ch, StreamID: "st-" + ch})
		return t0
	}
	var sent []time.Time
	for i := 0; i < 20; i++ {
		ch := []string{"chanAAAAAAAA", "chanBBBBBBBB"}[i%2]
		sent = append(sent, emit(ch, []string{"Session Created", "Stream Start", "Stream End", "Session Ended"}[i/2%4]))
		time.Sleep(10 * time.Millisecond)
	}
	// Filtered out: health events.
	pub.StreamEvent(ctx, StreamChange{DetailType: StreamHealthChange, Name: "Starvation Start", ChannelID: "chanAAAAAAAA"})
	evs := rcv.waitFor(20, 20*time.Second)
	var delays []time.Duration
	for i := range sent {
		rcv.mu.Lock()
		delays = append(delays, rcv.at[i].Sub(sent[i]))
		rcv.mu.Unlock()
	}
	slices.Sort(delays)
	t.Logf("delivery delay over %d events: p50 %v p95 %v", len(delays), delays[len(delays)/2], delays[len(delays)*95/100])

	// The receiver goes down; events wait and arrive, in order, once it is back.
	rcv.stop()
	for i := 0; i < 4; i++ {
		emit("chanAAAAAAAA", []string{"Session Created", "Stream Start", "Stream End", "Session Ended"}[i])
	}
	time.Sleep(time.Second)
	rcv2 := startReceiver(t, rcv.addr, secret)
	defer rcv2.stop()
	back := rcv2.waitFor(4, 20*time.Second)

	// Delivery restarts (a process restart): nothing is repeated, and what is published while
	// it is stopped arrives afterwards.
	stopD()
	<-done
	emit("chanBBBBBBBB", "Session Created")
	stopD, done = start()
	defer func() { stopD(); <-done }()
	after := rcv2.waitFor(5, 20*time.Second)
	time.Sleep(500 * time.Millisecond)

	all := append(evs, rcv2.got()...)
	ids := map[string]bool{}
	for _, e := range all {
		if ids[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		ids[e.ID] = true
		if e.DetailType != StreamStateChange {
			t.Fatalf("filtered event delivered: %s", e.DetailType)
		}
	}
	if len(all) != 25 {
		t.Fatalf("delivered %d events, want 25", len(all))
	}
	names := func(evs []Event, ch string) []string {
		var out []string
		for _, e := range evs {
			if e.ChannelID() == ch {
				var d struct {
					EventName string `json:"event_name"`
				}
				_ = json.Unmarshal(e.Detail, &d)
				out = append(out, d.EventName)
			}
		}
		return out
	}
	if got := names(back, "chanAAAAAAAA"); !slices.Equal(got, []string{"Session Created", "Stream Start", "Stream End", "Session Ended"}) {
		t.Fatalf("order after the receiver came back: %v", got)
	}
	if len(after) != 5 || names(after[4:], "chanBBBBBBBB")[0] != "Session Created" {
		t.Fatalf("after restart: %d events", len(after))
	}
	if rcv.bad+rcv2.bad != 0 {
		t.Fatalf("%d requests failed signature checks", rcv.bad+rcv2.bad)
	}
}

func waitConsumer(t *testing.T, b *bus.Bus, w Webhook) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.JS.Consumer(context.Background(), StreamName, w.durable()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook consumer not created")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tail follows the stream from a start time with a filter.
func TestTail(t *testing.T) {
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "tail-test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := NewPublisher(ctx, b.JS, PublisherConfig{Envelope: Envelope{Region: "us-east-1", Account: "000000000000"}})
	if err != nil {
		t.Fatal(err)
	}
	pub.StreamEvent(ctx, StreamChange{DetailType: StreamStateChange, Name: "Stream Start", ChannelID: "chanCCCCCCCC"})
	pub.RecordingEvent(ctx, RecordingChange{Status: "Recording Start", ChannelID: "chanCCCCCCCC"})
	pub.StreamEvent(ctx, StreamChange{DetailType: StreamStateChange, Name: "Stream Start", ChannelID: "chanDDDDDDDD"})
	var out strings.Builder
	err = Tail(ctx, b.JS, TailConfig{Channels: []string{"chanCCCCCCCC"}, Since: time.Minute, Count: 2}, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"Stream Start"`) || !strings.Contains(lines[1], `"Recording Start"`) {
		t.Fatalf("tail printed:\n%s", out.String())
	}
}
