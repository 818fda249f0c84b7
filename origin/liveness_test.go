package origin_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"glasscast/origin"
	"glasscast/origin/origintest"
)

// registry stands for the live registrations an origin consults.
type registry struct {
	mu   sync.Mutex
	live map[string]string
}

func (r *registry) set(channel, stream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stream == "" {
		delete(r.live, channel)
		return
	}
	r.live[channel] = stream
}

func (r *registry) lookup(channel string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.live[channel]
	return s, ok
}

// TestIdleUnregisteredBroadcastEnds: a broadcast whose ingest died (no push for IdleEnd, and
// its registration gone) ends with EXT-X-ENDLIST, then goes offline after the linger. An idle
// broadcast that is still registered (a publisher in its reconnect grace) is left alone, and
// so is a registered one that keeps receiving parts.
func TestIdleUnregisteredBroadcastEnds(t *testing.T) {
	clock := newFakeClock()
	reg := &registry{live: map[string]string{}}
	s := stepped(t, origin.Config{Clock: clock.Now, Linger: time.Minute, Live: reg.lookup, IdleEnd: 10 * time.Second},
		origintest.Config{Backfill: 2})
	reg.set(s.channel(), s.pub.Stream().StreamID)
	steps(t, s, 2)

	// Registered and idle: stays live through several sweeps.
	clock.Add(30 * time.Second)
	time.Sleep(2500 * time.Millisecond)
	if pl := mediaPlaylist(t, s, "720p", ""); pl.Ended {
		t.Fatalf("a registered broadcast ended:\n%s", pl.Raw)
	}
	// Unregistered but receiving parts: stays live.
	reg.set(s.channel(), "")
	steps(t, s, 1)
	time.Sleep(2500 * time.Millisecond)
	if pl := mediaPlaylist(t, s, "720p", ""); pl.Ended {
		t.Fatalf("a broadcast receiving parts ended:\n%s", pl.Raw)
	}
	// Unregistered and idle: ended at the next sweep, offline after the linger.
	clock.Add(11 * time.Second)
	waitFor(t, func() bool { return mediaPlaylist(t, s, "720p", "").Ended })
	clock.Add(time.Minute)
	if status, _, _ := get(t, s.url()); status != http.StatusNotFound {
		t.Fatalf("after linger: %d", status)
	}
}

// TestIdleBroadcastOfReplacedStreamEnds: the registration names another stream (the channel
// went live elsewhere): the idle old broadcast ends.
func TestIdleBroadcastOfReplacedStreamEnds(t *testing.T) {
	clock := newFakeClock()
	reg := &registry{live: map[string]string{}}
	s := stepped(t, origin.Config{Clock: clock.Now, Live: reg.lookup, IdleEnd: 10 * time.Second}, origintest.Config{Backfill: 2})
	reg.set(s.channel(), "st-other")
	clock.Add(11 * time.Second)
	waitFor(t, func() bool { return mediaPlaylist(t, s, "720p", "").Ended })
}
