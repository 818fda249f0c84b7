package archive

import (
	"log/slog"
	"testing"

	"glasscast/bus"
)

// TestClaims runs two archive nodes' claims against an embedded NATS server: one channel is
// recorded by one node; a restarted node keeps its own claims; a released claim is free.
func TestClaims(t *testing.T) {
	ctx := t.Context()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Name: "claims-test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := openClaims(ctx, b.JS, bus.Replication{}, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := openClaims(ctx, b.JS, bus.Replication{}, "node-b")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := a.take(ctx, "ch1"); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, err := bb.take(ctx, "ch1"); ok || err != nil {
		t.Fatalf("second node took a held claim: %v %v", ok, err)
	}
	a2, _ := openClaims(ctx, b.JS, bus.Replication{}, "node-a") // the same node after a restart
	if ok, err := a2.take(ctx, "ch1"); !ok || err != nil {
		t.Fatalf("restarted node lost its claim: %v %v", ok, err)
	}
	if err := a.refresh(ctx, "ch1"); err != nil {
		t.Fatal(err)
	}
	bb.release(ctx, "ch1") // not its claim: no effect
	if ok, _ := bb.take(ctx, "ch1"); ok {
		t.Fatal("release by another node freed the claim")
	}
	a.release(ctx, "ch1")
	if ok, err := bb.take(ctx, "ch1"); !ok || err != nil {
		t.Fatalf("released claim not free: %v %v", ok, err)
	}
	var none *claims // no NATS: every claim is this node's
	if ok, _ := none.take(ctx, "x"); !ok {
		t.Fatal("nil claims refused")
	}
}
