package archive

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"glasscast/store"
)

// Recording state changes: the recording_status values of IVS's "IVS Recording State Change"
// events and the event names GetStreamSession lists.
const (
	RecordingStart        = "Recording Start"
	RecordingEnd          = "Recording End"
	RecordingStartFailure = "Recording Start Failure"
	RecordingEndFailure   = "Recording End Failure"
)

// EventType is the detail-type of recording events.
const EventType = "IVS Recording State Change"

// Event is one recording state change with the detail fields of IVS's EventBridge event
// (reference/ivs-recording-events.md §6).
type Event struct {
	Time        time.Time
	Status      string // RecordingStart, RecordingEnd, ...
	ChannelID   string
	ChannelARN  string
	ChannelName string
	StreamID    string
	// StreamIDs are the streams merged into the recording (recording_session_stream_ids);
	// set on End events.
	StreamIDs   []string
	Reason      string // recording_status_reason: "" on success
	Bucket      string
	Prefix      string // recording_s3_key_prefix, no trailing slash; "" on Start Failure
	DurationMS  int64
	RecordingID string // recording_session_id
}

// Events hears about recording state changes. The archive records them in stream sessions;
// an EventBridge-style publisher can implement it too. Implementations must not block long.
type Events interface {
	RecordingEvent(ctx context.Context, e Event)
}

// EventsFunc adapts a function to Events.
type EventsFunc func(ctx context.Context, e Event)

// RecordingEvent implements Events.
func (f EventsFunc) RecordingEvent(ctx context.Context, e Event) { f(ctx, e) }

// MultiEvents delivers each event to every member in order.
type MultiEvents []Events

// RecordingEvent implements Events.
func (m MultiEvents) RecordingEvent(ctx context.Context, e Event) {
	for _, ev := range m {
		ev.RecordingEvent(ctx, e)
	}
}

// SessionEvents adds recording events to the stream sessions they concern, so that
// GetStreamSession lists them. The ingest writes the same records; compare-and-set keeps both.
type SessionEvents struct {
	Store *store.Store
	Log   *slog.Logger
}

// RecordingEvent implements Events.
func (s SessionEvents) RecordingEvent(ctx context.Context, e Event) {
	ids := e.StreamIDs
	if len(ids) == 0 && e.StreamID != "" {
		ids = []string{e.StreamID}
	}
	se := store.SessionEvent{Name: e.Status, Type: EventType, Time: e.Time.UTC()}
	if e.Status == RecordingStartFailure || e.Status == RecordingEndFailure {
		se.Code = e.Reason
	}
	for _, id := range ids {
		err := s.update(ctx, store.SessionKey(e.ChannelID, id), se)
		if err != nil && s.Log != nil {
			lvl := slog.LevelWarn
			if errors.Is(err, store.ErrNotFound) {
				lvl = slog.LevelDebug // the session expired or never was: nothing to annotate
			}
			s.Log.Log(ctx, lvl, "record recording event in stream session", "event", e.Status, "stream", id, "err", err)
		}
	}
}

// update appends se to a session. The ingest writes a stream's session just after its live
// registration, which is what starts a recording, so a session not there yet is waited for.
func (s SessionEvents) update(ctx context.Context, key string, se store.SessionEvent) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Store.Sessions.Update(ctx, key, func(ss *store.Session) error {
			ss.Events = append(ss.Events, se)
			// Sessions list events in time order; a late event from a merged recording is
			// placed where it belongs.
			slices.SortStableFunc(ss.Events, func(a, b store.SessionEvent) int { return a.Time.Compare(b.Time) })
			if n := len(ss.Events); n > store.MaxSessionEvents {
				ss.Events = slices.Delete(ss.Events, 0, n-store.MaxSessionEvents)
			}
			return nil
		})
		if !errors.Is(err, store.ErrNotFound) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
