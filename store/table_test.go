package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Name: "test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type rec struct {
	N    int            `json:"n"`
	Tags map[string]int `json:"tags"`
}

func TestTableReadYourWritesAndCAS(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tbl, err := openTable[rec](ctx, b.JS, bus.Replication{}, jetstream.KeyValueConfig{Bucket: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Create(ctx, "a", rec{N: 1}); err != nil {
		t.Fatal(err)
	}
	if v, ok := tbl.Get("a"); !ok || v.N != 1 {
		t.Fatalf("replica did not reflect the write before Create returned: %+v %v", v, ok)
	}
	if err := tbl.Create(ctx, "a", rec{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	// 50 concurrent increments through compare-and-set: none may be lost.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := tbl.Update(ctx, "a", func(r *rec) error {
				r.N++
				if r.Tags == nil {
					r.Tags = map[string]int{}
				}
				r.Tags[fmt.Sprint(i)] = i
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if v, _ := tbl.Get("a"); v.N != 51 || len(v.Tags) != 50 {
		t.Fatalf("after 50 concurrent updates: n=%d tags=%d, want 51 and 50", v.N, len(v.Tags))
	}
	if _, err := tbl.Update(ctx, "missing", func(*rec) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	sentinel := errors.New("refuse")
	if _, err := tbl.Update(ctx, "a", func(*rec) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("update error not passed through: %v", err)
	}
	if err := tbl.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tbl.Get("a"); ok {
		t.Fatal("replica still has a deleted record after Delete returned")
	}
	if err := tbl.Delete(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestTableListOrderAndPersistence(t *testing.T) {
	dir := t.TempDir()
	b := openBus(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	tbl, err := openTable[rec](ctx, b.JS, bus.Replication{}, jetstream.KeyValueConfig{Bucket: "t2", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"c", "a", "b"} {
		if err := tbl.Put(ctx, k, rec{N: int(k[0])}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	b.Close()

	b = openBus(t, dir)
	defer b.Close()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	tbl, err = openTable[rec](ctx, b.JS, bus.Replication{}, jetstream.KeyValueConfig{Bucket: "t2", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	items := tbl.List()
	if len(items) != 3 || items[0].Key != "a" || items[1].Key != "b" || items[2].Key != "c" || items[2].Value.N != 'c' {
		t.Fatalf("after restart: %+v", items)
	}
}

// A live registration whose heartbeat stops disappears, and watchers hear about it.
func TestTableTTLExpiry(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tbl, err := openTable[rec](ctx, b.JS, bus.Replication{}, jetstream.KeyValueConfig{Bucket: "t3", TTL: time.Second, LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Put(ctx, "live", rec{N: 1}); err != nil {
		t.Fatal(err)
	}
	// Heartbeats keep it alive past the TTL.
	for i := 0; i < 4; i++ {
		time.Sleep(400 * time.Millisecond)
		if err := tbl.Put(ctx, "live", rec{N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := tbl.Get("live"); !ok {
		t.Fatal("heartbeated record expired")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := tbl.Get("live"); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("record without heartbeat still present 10 s after its 1 s TTL")
		}
		select {
		case <-tbl.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
