package origin

import (
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of an Origin's counters, for tests and, later, metrics.
type Stats struct {
	// Requests served, by kind.
	Multivariant      uint64 // multivariant playlists
	Playlists         uint64 // media playlists without _HLS_msn
	BlockingPlaylists uint64 // media playlists with _HLS_msn
	Parts             uint64
	Segments          uint64 // whole or streamed
	Inits             uint64
	// Blocked is the number of requests waiting right now: blocking playlist reloads, hinted
	// parts and prefetched segments not started yet, and segments being streamed.
	Blocked int64
	// Broadcasts is the number of broadcasts held, live or lingering.
	Broadcasts int
	// HeldBytes is the init and part data held in memory.
	HeldBytes int64
}

type counters struct {
	multivariant, playlists, blocking, parts, segments, inits atomic.Uint64
	blocked                                                   atomic.Int64
}

// Stats returns the current counters.
func (o *Origin) Stats() Stats {
	o.mu.RLock()
	n := len(o.channels)
	o.mu.RUnlock()
	return Stats{
		Multivariant:      o.stats.multivariant.Load(),
		Playlists:         o.stats.playlists.Load(),
		BlockingPlaylists: o.stats.blocking.Load(),
		Parts:             o.stats.parts.Load(),
		Segments:          o.stats.segments.Load(),
		Inits:             o.stats.inits.Load(),
		Blocked:           o.stats.blocked.Load(),
		Broadcasts:        n,
		HeldBytes:         o.held.Load(),
	}
}

// bufferPool recycles playlist render buffers: every playlist request renders one, and most
// are the same few kilobytes.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 8<<10)
	return &b
}

func (bp *bufferPool) put(b *[]byte) {
	if cap(*b) > 256<<10 {
		return // an outlier; let it go rather than pin it
	}
	*b = (*b)[:0]
	bp.p.Put(b)
}
