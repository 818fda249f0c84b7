package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// object is one cached upstream response. It is shared by every viewer that asks for its key:
// while the upstream fill runs, bytes are appended and waiters are woken at once, so a viewer
// streams a growing segment as it arrives and a late viewer starts with what is there.
type object struct {
	key   string
	ready chan struct{} // closed once status and headers are known

	// Set before ready closes, read-only after.
	status       int
	contentType  string
	cacheControl string
	encoding     string
	length       int64         // Content-Length from the upstream; -1 while it streams
	upstreamAge  time.Duration // Age the upstream reported (a shield tier's cache)
	fetched      time.Time     // when the upstream answered
	expires      time.Time     // zero: immutable, kept until evicted

	// hold, when set, ends the reuse of a plain live LL-HLS playlist sooner than its max-age.
	// Set and read only under the Cache's mutex (settle, lookup).
	hold hold

	mu      sync.RWMutex // readers (the viewers streaming or waiting) share it
	body    []byte
	done    bool
	err     error
	grew    chan struct{} // closed and replaced whenever body grows or the fill ends
	lastUse time.Time
	// finished is done, readable without mu: body and err no longer change once it is set,
	// and every viewer of a part or playlist asks for them in the same instant.
	finished atomic.Bool

	render renderCache // a complete playlist's shared rendering
}

func newObject(key string) *object {
	return &object{key: key, ready: make(chan struct{}), grew: make(chan struct{})}
}

// append adds fill bytes and wakes readers.
func (o *object) append(p []byte) {
	o.mu.Lock()
	o.body = append(o.body, p...)
	close(o.grew)
	o.grew = make(chan struct{})
	o.mu.Unlock()
}

// finish ends the fill; err non-nil means the body is truncated and must not be served whole.
func (o *object) finish(err error) {
	o.mu.Lock()
	o.done, o.err = true, err
	if cap(o.body) > len(o.body)+len(o.body)/4 {
		o.body = append([]byte(nil), o.body...) // give back append's spare capacity
	}
	o.finished.Store(true)
	close(o.grew)
	o.grew = make(chan struct{})
	o.mu.Unlock()
}

// snapshot returns the bytes from offset on, whether the fill is over, its error, and a
// channel that closes at the next change.
func (o *object) snapshot(offset int) ([]byte, bool, error, <-chan struct{}) {
	if o.finished.Load() {
		var chunk []byte
		if offset < len(o.body) {
			chunk = o.body[offset:len(o.body):len(o.body)]
		}
		return chunk, true, o.err, nil
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	var chunk []byte
	if offset < len(o.body) {
		chunk = o.body[offset:len(o.body):len(o.body)]
	}
	return chunk, o.done, o.err, o.grew
}

// complete reports whether the object is fully fetched without error, and its body.
func (o *object) complete() ([]byte, bool) {
	if o.finished.Load() {
		return o.body, o.err == nil
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.body, o.done && o.err == nil
}

func (o *object) size() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.body) + len(o.key) + 256
}

// fresh reports whether the object may still be served from cache at now.
func (o *object) fresh(now time.Time) bool {
	if !o.hold.until.IsZero() && !now.Before(o.hold.until) {
		return false
	}
	return o.expires.IsZero() || now.Before(o.expires)
}

// age is the Age header value at now: time in this cache plus what the upstream reported.
func (o *object) age(now time.Time) time.Duration {
	return now.Sub(o.fetched) + o.upstreamAge
}

// wait blocks until the fill ends; its error means a truncated body.
func (o *object) wait(ctx context.Context) error {
	return o.stream(ctx, func([]byte) error { return nil })
}

// stream writes the body from the start to write as it grows, until the fill ends or ctx is
// done. write is called without locks held.
func (o *object) stream(ctx context.Context, write func([]byte) error) error {
	off := 0
	for {
		chunk, done, err, grew := o.snapshot(off)
		if len(chunk) > 0 {
			if werr := write(chunk); werr != nil {
				return werr
			}
			off += len(chunk)
			continue
		}
		if done {
			return err
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
