package media

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// attemptTimeout bounds one Open (and the re-sending of init segments) to a sink, so that a
// sink that accepts connections but never answers is retried rather than waited on forever.
const attemptTimeout = 10 * time.Second

type teeOp uint8

const (
	opInit teeOp = iota + 1
	opPart
	opClose
)

// teeItem is one queued call.
type teeItem struct {
	op        teeOp
	rendition string
	r         Rendition
	part      Part
	data      []byte
}

// sinkQueue is one sink's share of a Tee broadcast: a bounded queue and the goroutine (run)
// that empties it into the sink, reopening and re-synchronising the sink after failures.
type sinkQueue struct {
	tb   *teeBroadcast
	name string
	sink Sink
	wake chan struct{} // capacity 1: something was queued
	done chan struct{} // closed when run returns

	mu       sync.Mutex
	items    []teeItem
	bytes    int64
	overflow bool // items were dropped: re-synchronise at the next segment boundary
	closing  bool // Close is queued; nothing more is accepted
	gone     bool // the sink gave the broadcast up for good
	state    SinkState
	since    time.Time
	closeErr error // set before done is closed
}

// push queues it, and reports whether the sink still takes the broadcast. It never blocks: a
// queue that would exceed its bound is emptied instead, and the sink re-synchronised.
func (q *sinkQueue) push(it teeItem) bool {
	q.mu.Lock()
	switch {
	case q.gone:
		q.mu.Unlock()
		return false
	case q.closing:
		q.mu.Unlock()
		return true
	case it.op == opClose:
		q.closing = true
	case q.bytes+int64(len(it.data)) > q.tb.t.cfg.QueueBytes:
		// Dropping the backlog (rather than the newest object) keeps the sink as close to
		// live as it can be once it catches up; the current inits are sent again.
		q.items = q.items[:0]
		q.bytes = 0
		if !q.overflow {
			q.tb.t.log.Warn("sink fell behind; its queue was dropped", "sink", q.name, "stream", q.tb.stream.StreamID)
		}
		q.overflow = true
		if it.op == opInit {
			// The init is sent with the others when the sink is re-synchronised.
			q.mu.Unlock()
			return true
		}
	}
	q.items = append(q.items, it)
	q.bytes += int64(len(it.data))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// batchBytes bounds the objects sent in one batch, so that a batch crosses a slow link well
// within attemptTimeout.
const batchBytes = 4 << 20

// next takes the oldest queued item, waiting for one, or with batch as many of the oldest as
// batchBytes allows (Close always comes last). overflow reports (and clears) a dropped backlog.
func (q *sinkQueue) next(ctx context.Context, batch bool) (items []teeItem, overflow, ok bool) {
	for {
		q.mu.Lock()
		overflow = q.overflow
		q.overflow = false
		if len(q.items) > 0 && !overflow {
			n, size := 1, int64(len(q.items[0].data))
			for batch && n < len(q.items) && size+int64(len(q.items[n].data)) <= batchBytes {
				size += int64(len(q.items[n].data))
				n++
			}
			items = slices.Clone(q.items[:n])
			clear(q.items[:n])
			q.items = q.items[n:]
			q.bytes -= size
			q.mu.Unlock()
			return items, false, true
		}
		q.mu.Unlock()
		if overflow {
			return nil, true, true
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false, false
		}
	}
}

// drop forgets the queued parts and inits (a re-synchronisation replaces them) and reports
// whether Close is queued.
func (q *sinkQueue) drop() (closing bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = q.items[:0]
	q.bytes = 0
	q.overflow = false
	if q.closing {
		q.items = append(q.items, teeItem{op: opClose})
	}
	return q.closing
}

func (q *sinkQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
}

func (q *sinkQueue) setState(s SinkState, err error) {
	q.mu.Lock()
	if q.state == s {
		q.mu.Unlock()
		return
	}
	q.state = s
	q.since = time.Now().UTC()
	q.mu.Unlock()
	log := q.tb.t.log.With("sink", q.name, "channel", q.tb.stream.ChannelID, "stream", q.tb.stream.StreamID, "state", string(s))
	if err != nil {
		log.Warn("sink state changed", "err", err)
	} else {
		log.Info("sink state changed")
	}
	q.tb.notify()
}

// run delivers the queue to the sink until Close is delivered or ctx ends. first receives the
// outcome of the first Open.
func (q *sinkQueue) run(ctx context.Context, first chan<- error) {
	defer close(q.done)
	cfg := q.tb.t.cfg
	backoff := cfg.RetryMin
	var bc Broadcast
	resync := false
	skip := make(map[string]bool) // renditions waiting for a segment boundary
	wait := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, cfg.RetryMax)
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) bool {
		if errors.Is(err, ErrSuperseded) {
			q.mu.Lock()
			q.gone = true
			q.closeErr = err
			q.mu.Unlock()
			q.setState(SinkDown, err)
			return false
		}
		q.setState(SinkDown, err)
		bc = nil
		return wait()
	}

	for {
		if bc == nil {
			b, err := q.open(ctx, resync)
			if first != nil {
				first <- err
				first = nil
			}
			if err != nil {
				if ctx.Err() != nil || !fail(err) {
					if q.closeErr == nil {
						q.closeErr = err
					}
					return
				}
				resync = true
				continue
			}
			bc = b
			backoff = cfg.RetryMin
			if resync {
				// Whatever was queued while the sink was away is older than the inits just
				// sent; parts continue from each rendition's next segment.
				q.drop()
				for _, in := range q.tb.currentInits() {
					skip[in.r.Name] = true
				}
				q.setState(SinkCatchingUp, nil)
			} else {
				q.setState(SinkInSync, nil)
			}
			resync = false
		}

		_, batching := bc.(Batcher)
		items, overflow, ok := q.next(ctx, batching)
		if !ok {
			return
		}
		if overflow {
			// Still reachable but too slow: send the current inits (one may have been
			// dropped) and skip to the next boundary, without reopening.
			q.setState(SinkCatchingUp, nil)
			if err := q.sendInits(ctx, bc); err != nil {
				if !fail(err) {
					return
				}
				resync = true
				continue
			}
			for _, in := range q.tb.currentInits() {
				skip[in.r.Name] = true
			}
			continue
		}

		objs := make([]Object, 0, len(items))
		closing := false
		for _, it := range items {
			switch it.op {
			case opInit:
				r := it.r
				objs = append(objs, Object{Init: &r, InitData: it.data})
			case opPart:
				if skip[it.rendition] {
					if it.part.Index != 0 {
						continue
					}
					delete(skip, it.rendition)
				}
				p := it.part
				p.Data = it.data
				objs = append(objs, Object{Rendition: it.rendition, Part: p})
			case opClose:
				closing = true
			}
		}
		err := deliver(ctx, bc, objs)
		if err == nil && closing {
			cctx, cancel := context.WithTimeout(ctx, attemptTimeout)
			q.closeErr = bc.Close(cctx)
			cancel()
			return
		}
		if err != nil {
			if ctx.Err() != nil || !fail(fmt.Errorf("%s: %w", q.name, err)) {
				return
			}
			resync = true
			continue
		}
		if len(skip) == 0 && q.empty() {
			q.setState(SinkInSync, nil)
		}
	}
}

// deliver makes the calls objs describe: in one call when the broadcast takes batches.
func deliver(ctx context.Context, bc Broadcast, objs []Object) error {
	if len(objs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if b, ok := bc.(Batcher); ok && len(objs) > 1 {
		return b.Batch(ctx, objs)
	}
	return Replay(ctx, bc, objs)
}

// open opens (or, with resync, reopens: same StreamID, so the sink resumes the broadcast) the
// broadcast on the sink and, when resuming, sends it the current init segments.
func (q *sinkQueue) open(ctx context.Context, resync bool) (Broadcast, error) {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	bc, err := q.sink.Open(actx, q.tb.stream)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", q.name, err)
	}
	if resync {
		if err := q.sendInits(actx, bc); err != nil {
			return nil, err
		}
	}
	return bc, nil
}

func (q *sinkQueue) sendInits(ctx context.Context, bc Broadcast) error {
	for _, in := range q.tb.currentInits() {
		if err := bc.Init(ctx, in.r, in.data); err != nil {
			return fmt.Errorf("%s: init %s: %w", q.name, in.r.Name, err)
		}
	}
	return nil
}
