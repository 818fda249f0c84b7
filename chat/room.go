package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"glasscast/chat/wire"
	"glasscast/store"
)

// room is a room's presence on this node: its local clients and the consumer that reads the
// room's frames from the stream, whichever edge published them, in the stream's order.
type room struct {
	id       string
	s        *Server
	ready    chan struct{} // closed once the consumer runs (or failed: err)
	err      error
	consumer jetstream.ConsumeContext
	refs     int // joins, guarded by Server.mu

	settings atomic.Pointer[store.Room]

	mu    sync.RWMutex
	conns map[*conn]struct{}

	rate rateWindow
}

// join returns the room, starting its consumer on first use, and counts one more client.
func (s *Server) join(ctx context.Context, id string) (*room, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("chat server closed")
	}
	rm, ok := s.rooms[id]
	if ok {
		rm.refs++
		s.mu.Unlock()
		select {
		case <-rm.ready:
		case <-ctx.Done():
			s.leave(rm)
			return nil, ctx.Err()
		}
		if rm.err != nil {
			s.leave(rm)
			return nil, rm.err
		}
		return rm, nil
	}
	rm = &room{id: id, s: s, ready: make(chan struct{}), refs: 1, conns: map[*conn]struct{}{}}
	if r, ok := s.store.Rooms.Get(id); ok {
		rm.settings.Store(&r)
	}
	s.rooms[id] = rm
	s.mu.Unlock()

	// The consumer belongs to the room, not to the request that first joined it.
	startCtx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	rm.err = rm.start(startCtx)
	cancel()
	close(rm.ready)
	if rm.err != nil {
		s.leave(rm)
		return nil, rm.err
	}
	return rm, nil
}

// start reads the room's new frames. An ordered consumer is ephemeral and recreates itself from
// the last sequence it delivered if NATS hiccups, so no frame is lost or repeated.
func (rm *room) start(ctx context.Context) error {
	cons, err := rm.s.js.OrderedConsumer(ctx, wire.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.Subject(rm.id)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("room %s consumer: %w", rm.id, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { rm.deliver(wire.Open(m.Headers(), m.Data())) })
	if err != nil {
		return fmt.Errorf("room %s consume: %w", rm.id, err)
	}
	rm.consumer = cc
	return nil
}

// leave counts one client less; the last one out stops the consumer.
func (s *Server) leave(rm *room) {
	s.mu.Lock()
	rm.refs--
	last := rm.refs == 0
	if last && s.rooms[rm.id] == rm {
		delete(s.rooms, rm.id)
	}
	s.mu.Unlock()
	if last && rm.consumer != nil {
		rm.consumer.Stop()
	}
}

// current returns the room's settings: the newest of what the stream said and the store holds.
func (rm *room) current() (store.Room, bool) {
	cur := rm.settings.Load()
	st, ok := rm.s.store.Rooms.Get(rm.id)
	if ok && (cur == nil || st.UpdatedAt.After(cur.UpdatedAt)) {
		return st, true
	}
	if cur == nil {
		return store.Room{}, false
	}
	return *cur, true
}

func (rm *room) add(c *conn) {
	rm.mu.Lock()
	rm.conns[c] = struct{}{}
	rm.mu.Unlock()
}

func (rm *room) remove(c *conn) {
	rm.mu.Lock()
	delete(rm.conns, c)
	rm.mu.Unlock()
}

// deliver hands one stream entry to every local client of the room. The frame is framed once
// and queued to each client without blocking: a full queue disconnects
// that client instead of delaying the others.
func (rm *room) deliver(e wire.Envelope) {
	switch e.Kind {
	case wire.KindFrame, wire.KindDisconnect:
		if e.FrameType == wire.TypeMessage {
			rm.rate.observe(e.FrameID, time.Now())
		}
		frame := textFrame(e.Data)
		rm.mu.RLock()
		for c := range rm.conns {
			c.enqueue(out{frame: frame})
			if e.Kind == wire.KindDisconnect && c.claims.UserID == e.User {
				c.enqueue(out{closeCode: websocket.CloseNormalClosure, closeReason: closeReason(e.Reason, "disconnected by a moderator")})
			}
		}
		rm.mu.RUnlock()
	case wire.KindRoomDeleted:
		rm.mu.RLock()
		for c := range rm.conns {
			c.enqueue(out{closeCode: websocket.CloseNormalClosure, closeReason: "room deleted"})
		}
		rm.mu.RUnlock()
	case wire.KindRoomUpdated:
		var r store.Room
		if err := json.Unmarshal(e.Data, &r); err == nil && r.ID == rm.id {
			rm.settings.Store(&r)
		}
	}
}

// closeReason fits a reason into a close frame (at most 123 bytes).
func closeReason(reason, fallback string) string {
	if reason == "" {
		reason = fallback
	}
	for len(reason) > 123 {
		r := []rune(reason)
		reason = string(r[:len(r)-1])
	}
	return reason
}

// rateWindow enforces a room's maximumMessageRatePerSecond over all its clients on all edges:
// every edge sees every MESSAGE of the room in the stream, and counts its own sends that are
// still on their way there. Two edges admitting at the same instant can overshoot by one each.
type rateWindow struct {
	mu      sync.Mutex
	times   []time.Time          // MESSAGEs seen in the stream, oldest first
	pending map[string]time.Time // admitted here, not yet seen in the stream
}

func (w *rateWindow) prune(now time.Time) {
	cut := now.Add(-time.Second)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = append(w.times[:0], w.times[i:]...)
	for id, t := range w.pending {
		if now.Sub(t) > 10*time.Second { // lost on its way: stop counting it
			delete(w.pending, id)
		}
	}
}

// reserve admits a message with Id id if the room is under limit messages in the last second.
func (w *rateWindow) reserve(id string, limit int, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune(now)
	n := len(w.times)
	for _, t := range w.pending {
		if now.Sub(t) < time.Second {
			n++
		}
	}
	if n >= limit {
		return false
	}
	if w.pending == nil {
		w.pending = map[string]time.Time{}
	}
	w.pending[id] = now
	return true
}

// release forgets a reservation whose message was not sent.
func (w *rateWindow) release(id string) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

// observe counts a MESSAGE seen in the stream.
func (w *rateWindow) observe(id string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, id)
	w.prune(now)
	w.times = append(w.times, now)
}
