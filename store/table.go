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
	changed chan struct{}
	err     error // set when the watcher stopped
}

// Item is a record with the bucket revision that wrote it.
type Item[T any] struct {
	Key      string
	Value    T
	Revision uint64
}

// openTable creates the bucket if needed and loads it into memory. The watcher lives until ctx
// ends.
func openTable[T any](ctx context.Context, js jetstream.JetStream, repl bus.Replication, cfg jetstream.KeyValueConfig) (*Table[T], error) {
	kv, err := repl.CreateOrUpdateKeyValue(ctx, js, cfg)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	t := &Table[T]{kv: kv, items: map[string]Item[T]{}, changed: make(chan struct{})}
	w, err := kv.WatchAll(ctx)
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
	defer func() { _ = w.Stop() }()
	initial := true
	for {
		select {
		case <-ctx.Done():
			t.fail(ctx.Err())
			return
		case e, ok := <-w.Updates():
			if !ok {
				t.fail(errors.New("watcher closed"))
				return
			}
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

func (t *Table[T]) fail(err error) {
	t.mu.Lock()
	t.err = err
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

func (t *Table[T]) apply(e jetstream.KeyValueEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Revision() > t.applied {
		t.applied = e.Revision()
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
	close(t.changed)
	t.changed = make(chan struct{})
}

// waitApplied blocks until the replica reflects revision rev.
func (t *Table[T]) waitApplied(ctx context.Context, rev uint64) error {
	for {
		t.mu.RLock()
		applied, ch, err := t.applied, t.changed, t.err
		t.mu.RUnlock()
		if applied >= rev {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replica stopped: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
		e, gerr := t.get(ctx, key)
		if gerr == nil && bytes.Equal(e.Value(), b) {
			return t.waitApplied(ctx, e.Revision())
		}
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("create %s: %w", key, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return t.waitApplied(ctx, rev)
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
	return t.waitApplied(ctx, rev)
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
			return v, t.waitApplied(ctx, e.Revision())
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
			continue // someone else wrote first: re-read and re-apply
		}
		if err != nil {
			return zero, fmt.Errorf("update %s: %w", key, err)
		}
		return v, t.waitApplied(ctx, rev)
	}
	return zero, fmt.Errorf("update %s: %w", key, ErrConflict)
}

// Delete removes a record; ErrNotFound if it is not there.
func (t *Table[T]) Delete(ctx context.Context, key string) error {
	if _, err := t.get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete %s: %w", key, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
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
	return t.waitApplied(ctx, st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq)
}

// purgeDeleteMarkers removes every delete marker from the bucket, so that no deleted key's
// name stays readable.
func (t *Table[T]) purgeDeleteMarkers(ctx context.Context) error {
	return bus.Retry(ctx, func(ctx context.Context) error {
		return t.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(-1))
	})
}
