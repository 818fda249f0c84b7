package control

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"glasscast/events"
	"glasscast/store"
)

// Reaper closes the stream sessions that no ingest will close: those left open by an ingest
// that died (its live registration expired, or another stream took the channel over) or by a
// serve process that was killed and restarted. Such a session gets an end time and IVS's
// events for a stream that failed: Stream Failure, Stream End, Session Ended.
//
// Every control node may run one. The session record is ended with compare-and-set, so only
// the reaper whose write lands emits the events. An ingest ends its own sessions before it
// removes their registration, so a session without one is never still ending normally.
type Reaper struct {
	Store *store.Store
	// Events hears the events of reaped sessions; nil: only the session history records them.
	Events events.StreamEvents
	// Every is the time between sweeps. Default 5 s.
	Every time.Duration
	// Grace is how long a session must stay orphaned before it is ended. Default store.LiveTTL:
	// an ingest cut off from NATS by a partition, or waiting out a JetStream leader election,
	// cannot refresh its registration for seconds while its broadcast goes on; it registers
	// again as soon as writes flow, well within one more TTL.
	Grace time.Duration
	Log   *slog.Logger

	suspects map[string]time.Time // orphans seen by the previous sweep, and since when
}

// failureReason is Stream Failure's reason for a stream whose ingest vanished.
const failureReason = "The ingest server stopped receiving the stream without ending it."

var errAlreadyEnded = errors.New("session already ended")

// Run sweeps until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep ends the sessions that were orphaned at this sweep and the previous one (two looks
// absorb a replica that lags behind the registration's removal), for at least Grace, and
// returns how many it ended.
func (r *Reaper) Sweep(ctx context.Context) int {
	grace := r.Grace
	if grace == 0 {
		grace = store.LiveTTL
	}
	now := time.Now()
	seen := make(map[string]time.Time)
	ended := 0
	for _, it := range r.Store.Sessions.List() {
		ss := it.Value
		if ss.EndTime != nil {
			continue
		}
		if live, ok := r.Store.Live.Get(ss.ChannelID); ok && live.StreamID == ss.StreamID && time.Since(live.UpdatedAt) < store.LiveTTL {
			continue
		}
		key := it.Key
		since, suspect := r.suspects[key]
		if !suspect {
			since = now
		}
		seen[key] = since
		if !suspect || now.Sub(since) < grace {
			continue
		}
		if r.end(ctx, key) {
			ended++
		}
	}
	r.suspects = seen
	return ended
}

// end closes one orphaned session and reports whether this reaper did it.
func (r *Reaper) end(ctx context.Context, key string) bool {
	now := time.Now().UTC()
	add := []store.SessionEvent{
		{Name: "Stream Failure", Type: events.StreamStateChange, Time: now},
		{Name: "Stream End", Type: events.StreamStateChange, Time: now},
		{Name: "Session Ended", Type: events.StreamStateChange, Time: now},
	}
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ss, err := r.Store.Sessions.Update(uctx, key, func(s *store.Session) error {
		if s.EndTime != nil {
			return errAlreadyEnded
		}
		if live, ok := r.Store.Live.Get(s.ChannelID); ok && live.StreamID == s.StreamID && time.Since(live.UpdatedAt) < store.LiveTTL {
			return errAlreadyEnded // it came back (a heartbeat that was late)
		}
		s.Events = append(s.Events, add...)
		if n := len(s.Events); n > store.MaxSessionEvents {
			s.Events = s.Events[n-store.MaxSessionEvents:]
		}
		s.EndTime = &now
		return nil
	})
	switch {
	case errors.Is(err, errAlreadyEnded):
		return false
	case err != nil:
		r.log().Warn("end orphaned stream session", "session", key, "err", err)
		return false
	}
	r.log().Warn("stream session ended: its ingest stopped without ending it", "channel", ss.ChannelID, "stream", ss.StreamID)
	if r.Events != nil {
		for _, e := range add {
			c := events.StreamChange{DetailType: e.Type, Name: e.Name, ChannelID: ss.ChannelID, ChannelName: ss.Channel.Name,
				StreamID: ss.StreamID, Time: e.Time}
			if e.Name == "Stream Failure" {
				c.Reason = failureReason
			}
			r.Events.StreamEvent(ctx, c)
		}
	}
	return true
}

func (r *Reaper) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
