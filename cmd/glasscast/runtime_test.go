package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/pbnjay/memory"
)

// keepRuntime restores the collector settings a test changes, for the tests after it.
func keepRuntime(t *testing.T) {
	percent := debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneRuntimeSetsGCAndShareOfMemory(t *testing.T) {
	keepRuntime(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("AUTOMEMLIMIT", "") // restored after the test; unset during it
	os.Unsetenv("AUTOMEMLIMIT")
	gogc, limit, err := tuneRuntime(250, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 250 || gogc != "250" {
		t.Errorf("GC percent %d (reported %q), want 250", got, gogc)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("runtime memory limit %d, reported %d", got, limit)
	}
	// Half of the machine, or of a cgroup limit below it.
	total := int64(memory.TotalMemory())
	if limit <= 0 || limit > total/2+1 {
		t.Errorf("limit %d MB, want at most half of %d MB", limit>>20, total>>20)
	}
	if limit < 64<<20 {
		t.Errorf("limit %d MB is implausibly small", limit>>20)
	}

	// A limit share of 0 removes the limit.
	if _, limit, err = tuneRuntime(250, 0); err != nil || limit != math.MaxInt64 {
		t.Errorf("share 0: limit %d, err %v; want none", limit, err)
	}
}

func TestTuneRuntimeLeavesEnvironmentAlone(t *testing.T) {
	keepRuntime(t)
	// The runtime read these at start; the test sets them only to see tuneRuntime defer to them.
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "3GiB")
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(3 << 30)
	gogc, limit, err := tuneRuntime(400, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(50); got != 50 || gogc != "50" {
		t.Errorf("GC percent %d (reported %q), want GOGC's 50", got, gogc)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 || limit != 3<<30 {
		t.Errorf("memory limit %d (reported %d), want GOMEMLIMIT's 3 GiB", got, limit)
	}
}

func TestRuntimeOptionsValidated(t *testing.T) {
	for _, c := range []struct {
		gc    int
		share float64
		ok    bool
	}{{400, 0.7, true}, {100, 0, true}, {0, 0.7, false}, {-1, 0.7, false}, {400, 1.5, false}, {400, -0.1, false}} {
		cfg := defaultConfig()
		cfg.GCPercent, cfg.MemoryLimit = c.gc, c.share
		if err := cfg.validate(); (err == nil) != c.ok {
			t.Errorf("gcPercent %d, memoryLimit %g: err %v, want ok=%v", c.gc, c.share, err, c.ok)
		}
	}
}
