package edge

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache holds complete objects in an LRU bounded in bytes, and the objects being filled. A
// key has at most one object, so any number of concurrent misses share one upstream fill:
// the first asks upstream, the others wait on the same object (request coalescing).
type Cache struct {
	maxBytes int

	mu       sync.Mutex
	lru      *simplelru.LRU[string, *object]
	bytes    int
	inflight map[string]*object

	hits, misses, coalesced, evictions uint64
}

// NewCache returns a cache holding at most maxBytes of complete objects.
func NewCache(maxBytes int) *Cache {
	c := &Cache{maxBytes: maxBytes, inflight: map[string]*object{}}
	// The entry count is bounded by bytes, not by the LRU's own limit.
	c.lru, _ = simplelru.NewLRU[string, *object](1<<30, func(_ string, o *object) { c.bytes -= o.size() })
	return c
}

// lookup returns the object for key and whether the caller must fill it. A stale cached
// object is dropped and replaced by a fill.
func (c *Cache) lookup(key string, now time.Time) (o *object, fill bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.inflight[key]; ok {
		c.coalesced++
		return o, false
	}
	if o, ok := c.lru.Get(key); ok {
		if o.fresh(now) && !c.overtaken(o) {
			c.hits++
			return o, false
		}
		c.lru.Remove(key)
	}
	c.misses++
	o = newObject(key)
	c.inflight[key] = o
	return o, true
}

// hold limits the reuse of a plain live LL-HLS playlist (liveLowLatencyPlaylist).
type hold struct {
	until time.Time // the reuse ends then, if that is before its max-age
	hint  string    // and once the part its preload hint names is here (its key)
}

// overtaken reports a held playlist whose hinted part has reached this cache. A player that
// fetches the hinted part and then reloads the playlist for the next hint (gohlslib does)
// must get one that lists the part, or it would fetch it again. Under c.mu.
func (c *Cache) overtaken(o *object) bool {
	if o.hold.hint == "" {
		return false
	}
	p, ok := c.inflight[o.hold.hint]
	if !ok {
		p, ok = c.lru.Peek(o.hold.hint)
	}
	if !ok {
		return false
	}
	select {
	case <-p.ready: // the upstream answered: a hinted part is sent only once it is whole
		return p.status == http.StatusOK
	default:
		return false
	}
}

// arrived notes that the upstream answered for the media object under key (a part, init or
// segment). A plain playlist of the same rendition still being filled may have been rendered
// before it, and would hint it again to a player that has just fetched it (overtaken, for
// the copies already held): later requests no longer share that fill, but start their own.
func (c *Cache) arrived(key string) {
	dir := key[:strings.LastIndexByte(key, '/')+1]
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.inflight {
		rest, ok := strings.CutPrefix(k, dir)
		if !ok {
			continue
		}
		name, query, _ := strings.Cut(rest, "?")
		if strings.HasSuffix(name, ".m3u8") && !strings.Contains(name, "/") && !strings.Contains(query, "_HLS_msn=") {
			delete(c.inflight, k)
		}
	}
}

// settle moves a finished fill into the LRU, or forgets it when it must not be reused (a
// failed or uncacheable fill, or one superseded), then evicts down to the byte bound. A plain
// live LL-HLS playlist is kept under h.
func (c *Cache) settle(o *object, keep bool, h hold) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[o.key] != o {
		return // superseded (arrived): a newer fill has the key
	}
	delete(c.inflight, o.key)
	if !keep {
		return
	}
	o.hold = h
	c.lru.Add(o.key, o)
	c.bytes += o.size()
	for c.bytes > c.maxBytes && c.lru.Len() > 1 {
		c.lru.RemoveOldest()
		c.evictions++
	}
}

// CacheStats are the cache's counters.
type CacheStats struct {
	Hits, Misses, Coalesced, Evictions uint64
	Objects, Bytes                     int
	Filling                            int
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Coalesced: c.coalesced, Evictions: c.evictions,
		Objects: c.lru.Len(), Bytes: c.bytes, Filling: len(c.inflight)}
}
