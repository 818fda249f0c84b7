package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// Errors a Table returns; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict means a compare-and-set lost to concurrent writers too many times in a row.
	ErrConflict = errors.New("concurrent update conflict")
)

// Table is one JetStream key-value bucket of JSON records, replicated into memory by a watcher so
// that reads never leave the process. Writes go to the bucket with compare-and-set and return
// only once the local replica has applied them, so a caller reads its own writes. A write that
// meets a failover (a bucket between leaders, a client between servers) is retried for a few
// seconds (bus.Retry) and recognised when an earlier attempt did land.
//
// Values handed out by Get and List are shared with the replica: treat them as read-only and
// change records only through Update.
type Table[T any] struct {
	kv jetstream.KeyValue

	mu      sync.RWMutex
	items   map[string]Item[T]
	sorted  []Item[T] // items in key order, shared by List callers; nil when it must be rebuilt
	applied uint64    // highest bucket revision the replica reflects
	// pinned holds keys a writer set ahead of the watcher (see catchUp), with the revision
	// written: the watcher's older entries for them are skipped.
	pinned  map[string]uint64
	lagging bool // a writer waited stallAfter in vain; cleared by the watcher's next entry
	changed chan struct{}
	err     error         // set when the watcher stopped
	stalled chan struct{} // a writer saw the watcher fall behind; the watch loop restarts it
}

// Item is a record with the bucket revision that wrote it.
type Item[T any] struct {
	Key      string
	Value    T
	Revision uint64
}

// stallAfter is how long a writer waits for the watcher before it sets its write in the replica
// itself. A watcher whose consumer lived on a server that died notices only after two missed
// 5 s heartbeats; writers should not wait that long.
const stallAfter = 500 * time.Millisecond

// restartEvery bounds how often a stalled watcher is replaced.
const restartEvery = 3 * time.Second

// checkQuietAfter is how long a watcher may deliver nothing before the table asks the bucket
// whether it has entries the watcher missed. Readers that never write (a control node reading
// the live registrations) have no writer to notice a stalled watcher for them: after a network
// partition heals, a consumer can stay silent although the bucket moved on.
const checkQuietAfter = 3 * time.Second

// openTable creates the bucket if needed and loads it into memory. The watcher lives until ctx
// ends.
func openTable[T any](ctx context.Context, js jetstream.JetStream, repl bus.Replication, cfg jetstream.KeyValueConfig) (*Table[T], error) {
	kv, err := repl.CreateOrUpdateKeyValue(ctx, js, cfg)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	t := &Table[T]{kv: kv, items: map[string]Item[T]{}, pinned: map[string]uint64{},
		changed: make(chan struct{}), stalled: make(chan struct{}, 1)}
	var w jetstream.KeyWatcher
	err = bus.Retry(ctx, func(context.Context) error {
		// The watcher outlives this call, so it takes ctx, not the attempt's.
		var err error
		w, err = kv.WatchAll(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", cfg.Bucket, err)
	}
	ready := make(chan struct{})
	go t.watch(ctx, w, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return t, nil
}

func (t *Table[T]) watch(ctx context.Context, w jetstream.KeyWatcher, ready chan struct{}) {
	stopW := func() {}
	defer func() { _ = w.Stop(); stopW() }()
	initial := true
	var restarted time.Time
	fresh := make(chan restartedWatcher, 1)
	quiet := time.NewTicker(checkQuietAfter)
	defer quiet.Stop()
	lastEntry := time.Now()
	checking := false
	checked := make(chan uint64, 1) // the bucket's last revision when it is past the replica, else 0
	nothingMissed := make(chan uint64, 1)
	for {
		select {
		case <-ctx.Done():
			t.fail(ctx.Err())
			return
		case <-quiet.C:
			if initial || checking || time.Since(lastEntry) < checkQuietAfter {
				continue
			}
			checking = true
			go func() { checked <- t.missedEntries(ctx) }()
		case last := <-checked:
			checking = false
			if last == 0 || time.Since(restarted) < restartEvery {
				continue
			}
			restarted = time.Now()
			t.mu.RLock()
			from := t.applied + 1
			t.mu.RUnlock()
			go t.restartWatcher(ctx, from, last, fresh, nothingMissed)
		case last := <-nothingMissed:
			// The revisions past the replica were deletions the bucket no longer holds (expired
			// markers): there is nothing to apply, and no reason to ask again.
			t.mu.Lock()
			t.applied = max(t.applied, last)
			t.mu.Unlock()
		case <-t.stalled:
			// A writer waited for the watcher in vain: start a new consumer where the replica
			// stands instead of waiting for the old one to notice its server is gone. The old
			// one keeps delivering meanwhile; if the new one cannot be made (no leader yet),
			// the next stalled writer tries again.
			if initial || time.Since(restarted) < restartEvery {
				continue
			}
			restarted = time.Now()
			t.mu.RLock()
			from := t.applied + 1
			t.mu.RUnlock()
			go t.restartWatcher(ctx, from, 0, fresh, nothingMissed)
		case r := <-fresh:
			_ = w.Stop()
			stopW()
			w, stopW = r.w, r.stop
			lastEntry = time.Now()
			t.apply(r.first)
		case e, ok := <-w.Updates():
			if !ok {
				t.fail(errors.New("watcher closed"))
				return
			}
			lastEntry = time.Now()
			if e == nil { // end of the initial snapshot
				if initial {
					initial = false
					close(ready)
				}
				continue
			}
			t.apply(e)
		}
	}
}

// missedEntries returns the bucket's last revision when it is past what the replica applied,
// else 0. An answer that cannot be had (no leader yet) is 0: the next quiet tick asks again.
func (t *Table[T]) missedEntries(ctx context.Context) uint64 {
	ctx, cancel := context.WithTimeout(ctx, bus.AttemptTimeout)
	defer cancel()
	st, err := t.kv.Status(ctx)
	if err != nil {
		return 0
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0
	}
	t.mu.RLock()
	applied := t.applied
	t.mu.RUnlock()
	if last := bs.StreamInfo().State.LastSeq; last > applied {
		return last
	}
	return 0
}

type restartedWatcher struct {
	w     jetstream.KeyWatcher
	stop  func()
	first jetstream.KeyValueEntry
}

// restartWatcher makes a watcher from revision from on and hands it over once it has delivered
// an entry, so that a consumer created but never fed (its server not yet current) does not
// replace one that may still recover. It gives up after bus.AttemptTimeout. When upTo is set
// (the bucket's last revision, seen past the replica) and the new watcher finds nothing from
// from on, it reports upTo on nothingMissed.
func (t *Table[T]) restartWatcher(ctx context.Context, from, upTo uint64, fresh chan<- restartedWatcher, nothingMissed chan<- uint64) {
	wctx, stop := context.WithCancel(ctx)
	timeout := time.NewTimer(bus.AttemptTimeout)
	defer timeout.Stop()
	made := make(chan jetstream.KeyWatcher, 1)
	go func() {
		w, err := t.kv.WatchAll(wctx, jetstream.ResumeFromRevision(from))
		if err != nil {
			w = nil
		}
		made <- w
	}()
	var w jetstream.KeyWatcher
	select {
	case w = <-made:
	case <-timeout.C:
	}
	for w != nil {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				w = nil
			} else if e != nil {
				fresh <- restartedWatcher{w: w, stop: stop, first: e}
				return
			} else if upTo > 0 { // the initial set ended empty
				select {
				case nothingMissed <- upTo:
				default:
				}
				upTo = 0
			}
		case <-timeout.C:
			_ = w.Stop()
			w = nil
		}
	}
	stop()
}

func (t *Table[T]) fail(err error) {
	t.mu.Lock()
	t.err = err
	t.notifyLocked()
	t.mu.Unlock()
}

func (t *Table[T]) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *Table[T]) apply(e jetstream.KeyValueEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.notifyLocked()
	t.lagging = false
	if e.Revision() > t.applied {
		t.applied = e.Revision()
	}
	if pin, ok := t.pinned[e.Key()]; ok {
		if e.Revision() < pin {
			return // the replica already holds a newer state of this key
		}
		delete(t.pinned, e.Key())
	}
	if cur, ok := t.items[e.Key()]; ok && e.Revision() <= cur.Revision {
		return // a restarted watcher repeating what the replica has
	}
	for k, pin := range t.pinned {
		if pin <= t.applied { // the watcher has passed it: later entries are all newer
			delete(t.pinned, k)
		}
	}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var v T
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			// A record this version cannot read is skipped, not fatal: it may come from a newer node.
			break
		}
		t.items[e.Key()] = Item[T]{Key: e.Key(), Value: v, Revision: e.Revision()}
		t.sorted = nil
	default: // delete, purge, or expiry marker
		if _, had := t.items[e.Key()]; had {
			delete(t.items, e.Key())
			t.sorted = nil
		}
	}
}

// waitApplied blocks until the replica reflects the write of value (nil: a delete) to key at
// revision rev. When the watcher lags (its consumer was lost with a server), the write is set in
// the replica directly, so the writer still reads its own write.
func (t *Table[T]) waitApplied(ctx context.Context, key string, rev uint64, value []byte) error {
	stall := time.NewTimer(stallAfter)
	defer stall.Stop()
	for {
		t.mu.RLock()
		applied, ch, err, lagging := t.applied, t.changed, t.err, t.lagging
		pin := t.pinned[key]
		t.mu.RUnlock()
		if applied >= rev || pin >= rev {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replica stopped: %w", err)
		}
		if lagging {
			// The watcher is known to be behind: do not make every writer wait for it.
			return t.catchUp(key, rev, value)
		}
		select {
		case <-ch:
		case <-stall.C:
			t.mu.Lock()
			t.lagging = true
			t.mu.Unlock()
			select {
			case t.stalled <- struct{}{}:
			default:
			}
			return t.catchUp(key, rev, value)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// catchUp sets the write of value (nil: a delete) to key at revision rev in the replica, ahead
// of the watcher. It does not read the bucket: a read may be answered by a replica that has not
// yet stored the write.
func (t *Table[T]) catchUp(key string, rev uint64, value []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.applied >= rev || t.pinned[key] >= rev {
		return nil // the watcher or another writer got there meanwhile
	}
	if value == nil {
		delete(t.items, key)
	} else {
		var v T
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		t.items[key] = Item[T]{Key: key, Value: v, Revision: rev}
	}
	t.pinned[key] = rev
	t.sorted = nil
	t.notifyLocked()
	return nil
}

// Changed returns a channel closed at the next change to the table.
func (t *Table[T]) Changed() <-chan struct{} {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.changed
}

// Get reads a record from the replica.
func (t *Table[T]) Get(key string) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	it, ok := t.items[key]
	return it.Value, ok
}

// List returns every record in key order. The slice is shared with other callers until the
// table changes: read it, never modify it.
func (t *Table[T]) List() []Item[T] {
	t.mu.RLock()
	if out := t.sorted; out != nil {
		t.mu.RUnlock()
		return out
	}
	t.mu.RUnlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sorted == nil {
		out := make([]Item[T], 0, len(t.items))
		for _, it := range t.items {
			out = append(out, it)
		}
		slices.SortFunc(out, func(a, b Item[T]) int { return strings.Compare(a.Key, b.Key) })
		t.sorted = out
	}
	return t.sorted
}

// Len is the number of records.
func (t *Table[T]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.items)
}

// Create writes a new record; ErrExists if the key is taken.
func (t *Table[T]) Create(ctx context.Context, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	var rev uint64
	ambiguous := false // an attempt failed in a way that may have stored the record anyway
	err = bus.Retry(ctx, func(ctx context.Context) error {
		var err error
		rev, err = t.kv.Create(ctx, key, b)
		ambiguous = ambiguous || bus.Transient(err)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyExists) && ambiguous {
		// Ours if it holds what we wrote: an earlier attempt landed but its answer was lost.
		// A replica that has not stored it yet may answer the read; ask again briefly.
		for range 10 {
			e, gerr := t.get(ctx, key)
			if gerr == nil && bytes.Equal(e.Value(), b) {
				return t.waitApplied(ctx, key, e.Revision(), e.Value())
			}
			if !errors.Is(gerr, jetstream.ErrKeyNotFound) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("create %s: %w", key, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return t.waitApplied(ctx, key, rev, b)
}

// get reads key from the bucket itself, retrying through a failover.
func (t *Table[T]) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	var e jetstream.KeyValueEntry
	err := bus.Retry(ctx, func(ctx context.Context) error {
		var err error
		e, err = t.kv.Get(ctx, key)
		return err
	})
	return e, err
}

// Put writes a record whatever was there; for records with a single writer (live state).
func (t *Table[T]) Put(ctx context.Context, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	var rev uint64
	err = bus.Retry(ctx, func(ctx context.Context) error {
		var err error
		rev, err = t.kv.Put(ctx, key, b)
		return err
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return t.waitApplied(ctx, key, rev, b)
}

// Update applies fn to the current record and writes the result with compare-and-set, retrying
// on concurrent writes so that no update is lost. fn may run several times; an error from it
// aborts the update and is returned as is.
func (t *Table[T]) Update(ctx context.Context, key string, fn func(*T) error) (T, error) {
	var zero T
	var sent []byte // what an attempt that may have landed unheard wrote
	for attempt := 0; attempt < 32; attempt++ {
		e, err := t.get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return zero, fmt.Errorf("update %s: %w", key, ErrNotFound)
		}
		if err != nil {
			return zero, fmt.Errorf("read %s: %w", key, err)
		}
		var v T
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return zero, fmt.Errorf("decode %s: %w", key, err)
		}
		if sent != nil && bytes.Equal(e.Value(), sent) {
			// Our earlier attempt landed; applying fn again would apply it twice.
			return v, t.waitApplied(ctx, key, e.Revision(), e.Value())
		}
		if err := fn(&v); err != nil {
			return zero, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return zero, fmt.Errorf("encode %s: %w", key, err)
		}
		var rev uint64
		err = bus.Retry(ctx, func(ctx context.Context) error {
			var err error
			rev, err = t.kv.Update(ctx, key, b, e.Revision())
			if bus.Transient(err) {
				sent = b
			}
			return err
		})
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Someone else wrote first, or the read came from a replica a write behind:
			// re-read and re-apply, backing off a little once it repeats.
			if attempt >= 3 {
				time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
			}
			continue
		}
		if err != nil {
			return zero, fmt.Errorf("update %s: %w", key, err)
		}
		return v, t.waitApplied(ctx, key, rev, b)
	}
	return zero, fmt.Errorf("update %s: %w", key, ErrConflict)
}

// Delete removes a record; ErrNotFound if it is not there.
func (t *Table[T]) Delete(ctx context.Context, key string) error {
	// The replica answers first: the bucket's answer may come from a replica that has not yet
	// stored a recent create.
	if _, ok := t.Get(key); !ok {
		if _, err := t.get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete %s: %w", key, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
	// A repeated delete only adds another marker.
	if err := bus.Retry(ctx, func(ctx context.Context) error { return t.kv.Delete(ctx, key) }); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// The delete marker's revision is not returned; read the bucket's last sequence instead.
	var st jetstream.KeyValueStatus
	err := bus.Retry(ctx, func(ctx context.Context) error {
		var err error
		st, err = t.kv.Status(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("status after delete %s: %w", key, err)
	}
	return t.waitApplied(ctx, key, st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq, nil)
}

// purgeDeleteMarkers removes every delete marker from the bucket, so that no deleted key's
// name stays readable.
func (t *Table[T]) purgeDeleteMarkers(ctx context.Context) error {
	return bus.Retry(ctx, func(ctx context.Context) error {
		return t.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1))
	})
}
