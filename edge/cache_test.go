package edge

import (
	"testing"
	"time"
)

// When a rendition's part arrives, the plain playlists of that rendition still being filled
// are no longer shared: a later request starts its own fill, and the superseded one, when it
// ends, does not replace it in the cache. Blocking reloads, which the upstream answers only
// once the part is listed, and other renditions' playlists keep being shared.
func TestArrivedSupersedesPlainPlaylistFills(t *testing.T) {
	c := NewCache(1 << 20)
	now := time.Now()
	const dir = "/api/video/v1/x/720p/"
	keys := map[string]bool{ // key: superseded by a part of 720p
		dir + "index.m3u8":                        true,
		dir + "index.m3u8?_HLS_skip=YES":          true,
		dir + "index.m3u8?_HLS_msn=9&_HLS_part=1": false,
		"/api/video/v1/x/360p/index.m3u8":         false,
		"/api/video/v1/x.m3u8":                    false,
		dir + "part9.0.m4s":                       false,
	}
	fills := map[string]*object{}
	for k := range keys {
		o, fill := c.lookup(k, now)
		if !fill {
			t.Fatalf("%s: first lookup not a fill", k)
		}
		fills[k] = o
	}
	c.arrived(dir + "part9.1.m4s")
	for k, superseded := range keys {
		o, fill := c.lookup(k, now)
		if fill != superseded || !fill && o != fills[k] {
			t.Errorf("%s: after the part arrived, a new fill %v, want %v", k, fill, superseded)
		}
		if fill {
			old := fills[k]
			old.status = 200
			close(old.ready)
			old.finish(nil)
			c.settle(old, true, hold{})
			if got, again := c.lookup(k, now); again || got != o {
				t.Errorf("%s: the superseded fill's end took the key from the new one", k)
			}
		}
	}
}
