package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// tuneRuntime sets Go's collector. Its memory limit is a share of the machine's memory, or of
// its cgroup's limit when that is lower: a node whose live heap is mostly the edge cache (512 MB
// by default) would, with Go's default of no limit, let its heap grow to twice that between
// collections and be killed on a 1 GB machine; under a limit it collects more often instead.
// gcPercent is Go's GOGC: raising it trades memory for fewer collections (measured: 400 held no
// more LL-HLS viewers than 100 on 2 cores, so the default stays Go's). The GOGC and GOMEMLIMIT
// environment variables, when set, win. It returns what it set, for the log.
func tuneRuntime(gcPercent int, limitShare float64) (gogc string, limit int64, err error) {
	gogc = os.Getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(gcPercent)
		gogc = fmt.Sprint(gcPercent)
	}
	if limitShare == 0 {
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(math.MaxInt64)
		}
		return gogc, debug.SetMemoryLimit(-1), nil
	}
	// memlimit.Set leaves a GOMEMLIMIT from the environment alone.
	limit, err = memlimit.Set(
		memlimit.WithRatio(limitShare),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
	)
	if err != nil {
		return gogc, limit, fmt.Errorf("runtime.memoryLimit: %w", err)
	}
	return gogc, limit, nil
}
