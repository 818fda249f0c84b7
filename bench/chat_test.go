package bench

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	s := h.summary()
	near := func(name string, got, want time.Duration) {
		t.Helper()
		if got < want*95/100 || got > want*105/100 {
			t.Fatalf("%s = %v, want about %v", name, got, want)
		}
	}
	near("p50", s.P50, 500*time.Millisecond)
	near("p95", s.P95, 950*time.Millisecond)
	near("p99", s.P99, 990*time.Millisecond)
	if s.Max != time.Second || s.N != 1000 {
		t.Fatalf("max %v n %d", s.Max, s.N)
	}
	// Every bucket's bound is above what it holds and below the next bucket's values.
	for us := uint64(0); us < 1<<22; us = us*11/10 + 1 {
		b := bucketOf(us)
		if bucketValue(b) < us || (b > 0 && bucketValue(b-1) >= us) {
			t.Fatalf("%dµs in bucket %d bounded by %d", us, b, bucketValue(b))
		}
	}
}

func TestStamp(t *testing.T) {
	ns, edge, ok := stamp([]byte(`{"Type":"MESSAGE","Id":"x","RequestId":"r","Attributes":{"e":"1","t":"1700000000000000000"},"Content":"c"}`))
	if !ok || ns != 1700000000000000000 || edge != 1 {
		t.Fatalf("stamp: %d %d %v", ns, edge, ok)
	}
	if _, _, ok := stamp([]byte(`{"Type":"MESSAGE","Attributes":null}`)); ok {
		t.Fatal("a message without a stamp was read")
	}
}
