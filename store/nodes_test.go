package store

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"glasscast/bus"
)

// A heartbeat puts the node in the registry with its load, refreshes it, and removes it when
// its context ends.
func TestHeartbeat(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	var load atomic.Int64
	load.Store(7)
	hctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Heartbeat(hctx, Node{Name: "edge-1", Roles: []string{"edge"}, Region: "b", EdgeURL: "http://e1"}, load.Load)
	}()
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			select {
			case <-s.Nodes.Changed():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	wait("the node", func() bool {
		n, ok := s.Nodes.Get("edge-1")
		return ok && n.Region == "b" && n.Load == 7 && n.Fresh(time.Now())
	})
	load.Store(9)
	wait("a refresh with the new load", func() bool { n, _ := s.Nodes.Get("edge-1"); return n.Load == 9 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Nodes.Get("edge-1"); ok {
		t.Fatal("a stopped node is still in the registry")
	}
}
