package origin

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"glasscast/media"
)

// broadcast is one stream of a channel: its renditions and whether it has ended.
type broadcast struct {
	o      *Origin
	stream media.Stream
	// td is the advertised EXT-X-TARGETDURATION: the stream's target rounded up to whole
	// seconds. Every limit the spec ties to the target duration uses it.
	td time.Duration

	mu         sync.RWMutex
	renditions map[string]*rendition
	order      []*rendition // in Init order: stable rendition reports
	writer     uint64       // the handle allowed to publish; older handles are superseded
	ended      bool
	endedAt    time.Time
	freed      bool
	lastWrite  time.Time // of the last Open, Init or Part: a live publisher writes every part
}

func newBroadcast(o *Origin, s media.Stream) *broadcast {
	return &broadcast{
		o:          o,
		stream:     s,
		td:         time.Duration(math.Ceil(s.TargetDuration.Seconds())) * time.Second,
		renditions: make(map[string]*rendition),
	}
}

func (b *broadcast) low() bool { return b.stream.LowLatency }

// retention is how long removed segments stay downloadable: never under three target
// durations, which the spec requires for parts once they leave the playlist.
func (b *broadcast) retention() time.Duration { return max(b.o.cfg.Retention, 3*b.td) }

// blockLimit is how long a request may wait for something that does not exist yet before the
// origin answers 503.
func (b *broadcast) blockLimit() time.Duration { return 3 * b.td }

// skipUntil is the CAN-SKIP-UNTIL boundary, the spec's minimum of six target durations.
func (b *broadcast) skipUntil() time.Duration {
	if b.o.cfg.DisableDeltaUpdates {
		return 0
	}
	return 6 * b.td
}

func (b *broadcast) limits() windowLimits {
	return windowLimits{segments: b.o.cfg.Window, minDur: 3 * b.td, target: b.td}
}

// resume hands out a new publishing handle and clears a previous end. Called with the
// origin's lock held.
func (b *broadcast) resume() *handle {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writer++
	b.ended = false
	b.lastWrite = b.o.cfg.Clock()
	return &handle{b: b, seq: b.writer}
}

// idle is how long the broadcast has received nothing; zero once it ended.
func (b *broadcast) idle(now time.Time) time.Duration {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ended || b.freed {
		return 0
	}
	return now.Sub(b.lastWrite)
}

// anyWriter makes end unconditional.
const anyWriter = 0

// end marks the broadcast ended (EXT-X-ENDLIST), completes segments in progress and wakes
// every waiting request. Unless writer is anyWriter, it does so only while that handle is the
// current one, so that a late Close from a replaced connection cannot end a resumed broadcast.
func (b *broadcast) end(now time.Time, writer uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended || b.freed || writer != anyWriter && writer != b.writer {
		return
	}
	b.ended = true
	b.endedAt = now
	for _, r := range b.order {
		r.finish(now, b.limits())
	}
}

// expired reports whether an ended broadcast has lingered long enough to be dropped.
func (b *broadcast) expired(now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.freed || b.ended && now.Sub(b.endedAt) >= b.o.cfg.Linger
}

// free releases the broadcast's share of held bytes. Requests still holding it finish with
// what they have; the memory goes when they do.
func (b *broadcast) free() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.freed {
		return
	}
	b.freed = true
	for _, r := range b.order {
		b.o.held.Add(-r.bytes)
		r.bytes = 0
	}
}

// prune drops what retention no longer requires.
func (b *broadcast) prune(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.freed {
		return
	}
	for _, r := range b.order {
		b.o.held.Add(-r.prune(now, b.retention(), 2*b.skipUntil()))
	}
}

// handle is the media.Broadcast a publisher holds.
type handle struct {
	b   *broadcast
	seq uint64
}

// check returns the error for a handle that may no longer publish. Called with b.mu held.
func (h *handle) check() error {
	switch {
	case h.b.freed:
		return ErrClosed
	case h.seq != h.b.writer:
		return ErrSuperseded
	}
	return nil
}

// Init implements media.Broadcast.
func (h *handle) Init(ctx context.Context, r media.Rendition, init []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !safeName(r.Name) {
		return fmt.Errorf("rendition name %q: %w", r.Name, ErrInvalid)
	}
	if len(init) == 0 {
		return fmt.Errorf("rendition %s: empty init segment: %w", r.Name, ErrInvalid)
	}
	b := h.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	b.lastWrite = b.o.cfg.Clock()
	rd := b.renditions[r.Name]
	if rd == nil {
		rd = newRendition(r)
		b.renditions[r.Name] = rd
		b.order = append(b.order, rd)
	}
	switch cur := rd.inits[r.Generation]; {
	case r.Generation < rd.desc.Generation:
		return fmt.Errorf("rendition %s: generation %d after %d: %w", r.Name, r.Generation, rd.desc.Generation, ErrOutOfOrder)
	case cur != nil && !bytes.Equal(cur, init):
		return fmt.Errorf("rendition %s: generation %d already has another init segment: %w", r.Name, r.Generation, ErrOutOfOrder)
	case cur == nil:
		rd.inits[r.Generation] = init
		rd.bytes += int64(len(init))
		b.o.held.Add(int64(len(init)))
	}
	rd.desc = r
	return nil
}

// Part implements media.Broadcast.
func (h *handle) Part(ctx context.Context, rendition string, p media.Part) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(p.Data) == 0 || p.Duration <= 0 || p.Index < 0 {
		return fmt.Errorf("part %d.%d of %s: empty or negative: %w", p.MSN, p.Index, rendition, ErrInvalid)
	}
	b := h.b
	now := b.o.cfg.Clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	b.lastWrite = now
	rd := b.renditions[rendition]
	if rd == nil {
		return fmt.Errorf("rendition %s: %w", rendition, media.ErrNotFound)
	}
	if b.ended {
		// A resumed publisher reopens first; a part after Close on the same handle
		// would rewrite a playlist that already said ENDLIST.
		return fmt.Errorf("part %d.%d of %s after close: %w", p.MSN, p.Index, rendition, ErrOutOfOrder)
	}
	if b.low() && p.Duration > b.stream.PartTarget+time.Millisecond {
		b.o.log.Warn("part longer than PART-TARGET", "channel", b.stream.ChannelID, "rendition", rendition,
			"msn", p.MSN, "index", p.Index, "duration", p.Duration, "target", b.stream.PartTarget)
	}
	added, err := rd.appendPart(&p, now, b.limits())
	if err != nil {
		return fmt.Errorf("rendition %s: %w", rendition, err)
	}
	if added == 0 {
		if p.Last {
			rd.notify() // a repeat marked Last may have ended its segment
		}
		return nil
	}
	b.o.held.Add(added)
	// Removed segments are released as new ones arrive, not only by the sweeper.
	b.o.held.Add(-rd.prune(now, b.retention(), 2*b.skipUntil()))
	rd.notify()
	return nil
}

// Close implements media.Broadcast. Closing a superseded handle does nothing: the publisher
// that took over owns the broadcast now.
func (h *handle) Close(context.Context) error {
	h.b.end(h.b.o.cfg.Clock(), h.seq)
	return nil
}
