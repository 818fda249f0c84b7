package ingest

import (
	"sync"
	"time"
)

// Health values, as IVS reports them.
const (
	healthHealthy  = "HEALTHY"
	healthStarving = "STARVING"
)

// healthTracker decides whether input arrives at least as fast as real time. It compares, over
// a sliding window, how far media time advanced against how far the wall clock did, and
// notices when input stops altogether.
type healthTracker struct {
	mu          sync.Mutex
	lastArrival time.Time
	lastMedia   time.Duration
	winWall     time.Time
	winMedia    time.Duration
	prevWall    time.Time // the previous window, kept so a fresh window still has history
	prevMedia   time.Duration
	started     bool
}

const (
	healthWindow = 4 * time.Second
	stallAfter   = 2 * time.Second
	// slowRatio: media advancing slower than this fraction of wall time is starving.
	slowRatio = 0.9
)

func (h *healthTracker) observe(now time.Time, media time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started || media < h.lastMedia-time.Second {
		// first sample, or the input clock restarted (a reconnect): start over
		h.started = true
		h.winWall, h.winMedia = now, media
		h.prevWall, h.prevMedia = now, media
	}
	h.lastArrival = now
	if media > h.lastMedia || now.Equal(h.winWall) {
		h.lastMedia = media
	}
	if now.Sub(h.winWall) >= healthWindow {
		h.prevWall, h.prevMedia = h.winWall, h.winMedia
		h.winWall, h.winMedia = now, h.lastMedia
	}
}

// reset forgets the input, for a publisher that reconnects.
func (h *healthTracker) reset() {
	h.mu.Lock()
	h.started = false
	h.lastMedia = 0
	h.mu.Unlock()
}

func (h *healthTracker) evaluate(now time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		return healthHealthy
	}
	if now.Sub(h.lastArrival) > stallAfter {
		return healthStarving
	}
	wall := h.lastArrival.Sub(h.prevWall)
	if wall < healthWindow {
		return healthHealthy // not enough history to judge the rate
	}
	if float64(h.lastMedia-h.prevMedia) < slowRatio*float64(wall) {
		return healthStarving
	}
	return healthHealthy
}
