package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// fakeEntry is a watcher entry made up by the test.
type fakeEntry struct {
	key   string
	value []byte
	rev   uint64
	op    jetstream.KeyValueOp
}

func (e fakeEntry) Bucket() string                  { return "t" }
func (e fakeEntry) Key() string                     { return e.key }
func (e fakeEntry) Value() []byte                   { return e.value }
func (e fakeEntry) Revision() uint64                { return e.rev }
func (e fakeEntry) Created() time.Time              { return time.Time{} }
func (e fakeEntry) Delta() uint64                   { return 0 }
func (e fakeEntry) Operation() jetstream.KeyValueOp { return e.op }

// A write set in the replica ahead of a lagging watcher is not undone by the watcher's older
// entries, and newer ones replace it.
func TestCatchUpAheadOfWatcher(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tbl, err := openTable[rec](ctx, b.JS, bus.Replication{}, jetstream.KeyValueConfig{Bucket: "cu"})
	if err != nil {
		t.Fatal(err)
	}
	const base = 1000 // revisions far past what the real bucket holds
	if err := tbl.catchUp("k", base+10, []byte(`{"n":5}`)); err != nil {
		t.Fatal(err)
	}
	if v, ok := tbl.Get("k"); !ok || v.N != 5 {
		t.Fatalf("after catch-up: %+v %v", v, ok)
	}
	tbl.apply(fakeEntry{key: "k", value: []byte(`{"n":1}`), rev: base + 5, op: jetstream.KeyValuePut})
	tbl.apply(fakeEntry{key: "k", rev: base + 7, op: jetstream.KeyValueDelete})
	if v, ok := tbl.Get("k"); !ok || v.N != 5 {
		t.Fatalf("an older entry undid the write: %+v %v", v, ok)
	}
	tbl.apply(fakeEntry{key: "k", value: []byte(`{"n":5}`), rev: base + 10, op: jetstream.KeyValuePut})
	tbl.apply(fakeEntry{key: "k", value: []byte(`{"n":6}`), rev: base + 11, op: jetstream.KeyValuePut})
	if v, ok := tbl.Get("k"); !ok || v.N != 6 {
		t.Fatalf("a newer entry was not applied: %+v %v", v, ok)
	}
	if len(tbl.pinned) != 0 {
		t.Fatalf("pins left: %v", tbl.pinned)
	}
	// A delete ahead of the watcher.
	if err := tbl.catchUp("k", base+20, nil); err != nil {
		t.Fatal(err)
	}
	tbl.apply(fakeEntry{key: "k", value: []byte(`{"n":7}`), rev: base + 15, op: jetstream.KeyValuePut})
	if _, ok := tbl.Get("k"); ok {
		t.Fatal("an older put brought a deleted key back")
	}
	// Writes wait for a lagging watcher only once: then they set themselves.
	start := time.Now()
	if err := tbl.waitApplied(ctx, "x", base+30, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < stallAfter {
		t.Fatalf("the first write waited only %v", d)
	}
	start = time.Now()
	if err := tbl.waitApplied(ctx, "y", base+31, []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= stallAfter {
		t.Fatalf("a write while lagging waited %v", d)
	}
	if v, ok := tbl.Get("y"); !ok || v.N != 2 {
		t.Fatalf("y: %+v %v", v, ok)
	}
}
