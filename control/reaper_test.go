package control

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"glasscast/bus"
	"glasscast/events"
	"glasscast/store"
)

type recordedEvents struct {
	mu  sync.Mutex
	got []events.StreamChange
}

func (r *recordedEvents) StreamEvent(_ context.Context, c events.StreamChange) {
	r.mu.Lock()
	r.got = append(r.got, c)
	r.mu.Unlock()
}

// TestReaperEndsOrphanedSessions: an open session with no live registration (its ingest died)
// is ended on the second sweep that sees it orphaned, with Stream Failure, Stream End and
// Session Ended, by exactly one of two reapers; a session that is live, or already ended,
// is left alone.
func TestReaperEndsOrphanedSessions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bs, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "reaper"}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); bs.Close() })
	st, err := store.Open(ctx, bs.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute).UTC()
	ended := start.Add(time.Second)
	put := func(ch, stream string, end *time.Time) {
		s := store.Session{ChannelID: ch, StreamID: stream, StartTime: start, EndTime: end, Channel: store.Channel{ID: ch, Name: "n-" + ch},
			Events: []store.SessionEvent{{Name: "Session Created", Type: events.StreamStateChange, Time: start}}}
		if err := st.Sessions.Put(ctx, store.SessionKey(ch, stream), s); err != nil {
			t.Fatal(err)
		}
	}
	put("dead", "st-dead", nil)
	put("live", "st-live", nil)
	put("done", "st-done", &ended)
	put("taken", "st-old", nil) // the channel went live again as another stream
	for ch, stream := range map[string]string{"live": "st-live", "taken": "st-new"} {
		if err := st.Live.Put(ctx, ch, store.Live{ChannelID: ch, StreamID: stream, UpdatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}

	ev := &recordedEvents{}
	// An orphan is left alone for the grace period: a partitioned ingest re-registers within it.
	patient := &Reaper{Store: st, Events: ev, Grace: time.Hour}
	if n := patient.Sweep(ctx) + patient.Sweep(ctx); n != 0 {
		t.Fatalf("sweeps inside the grace period ended %d sessions", n)
	}
	// A grace below the sweeps' spacing: the rest of this test is about the two looks.
	a, b := &Reaper{Store: st, Events: ev, Grace: time.Nanosecond}, &Reaper{Store: st, Events: ev, Grace: time.Nanosecond}
	if n := a.Sweep(ctx) + b.Sweep(ctx); n != 0 {
		t.Fatalf("first sweeps ended %d sessions; an orphan must be seen twice", n)
	}
	if n := a.Sweep(ctx) + b.Sweep(ctx); n != 2 {
		t.Fatalf("second sweeps ended %d sessions, want 2 (dead, taken)", n)
	}
	for key, wantEnded := range map[string]bool{"dead.st-dead": true, "taken.st-old": true, "live.st-live": false} {
		s, _ := st.Sessions.Get(key)
		if (s.EndTime != nil) != wantEnded {
			t.Errorf("%s: endTime %v", key, s.EndTime)
		}
		var names []string
		for _, e := range s.Events {
			names = append(names, e.Name)
		}
		if want := []string{"Session Created", "Stream Failure", "Stream End", "Session Ended"}; wantEnded && !slices.Equal(names, want) {
			t.Errorf("%s: events %v, want %v", key, names, want)
		}
	}
	if s, _ := st.Sessions.Get("done.st-done"); !s.EndTime.Equal(ended) || len(s.Events) != 1 {
		t.Errorf("an ended session changed: %+v", s)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.got) != 6 {
		t.Fatalf("%d events, want 3 for each of 2 sessions: %+v", len(ev.got), ev.got)
	}
	for _, e := range ev.got {
		if e.DetailType != events.StreamStateChange || e.ChannelName == "" || (e.Name == "Stream Failure") != (e.Reason != "") {
			t.Errorf("event %+v", e)
		}
	}
}
