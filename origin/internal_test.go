package origin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"glasscast/media"
	"glasscast/origin/origintest"
	"glasscast/origin/playlist"
)

func TestParseDirectives(t *testing.T) {
	cases := []struct {
		raw   string
		want  directives
		isErr bool
	}{
		{"", directives{}, false},
		{"token=a&_HLS_msn=5&_HLS_part=2&x=1", directives{msn: 5, hasMSN: true, part: 2, hasPart: true, query: "token=a&x=1"}, false},
		{"_HLS_skip=YES&t=%22", directives{skip: playlist.SkipSegments, query: "t=%22"}, false},
		{"_HLS_skip=v2", directives{skip: playlist.SkipSegmentsAndDateRanges}, false},
		{"_HLS_skip=maybe&_HLS_future=1", directives{}, false},
		{"%5FHLS_msn=3", directives{msn: 3, hasMSN: true}, false},
		{"_HLS_msn=-1", directives{}, true},
		{"_HLS_msn=1&_HLS_msn=2", directives{}, true},
		{"_HLS_part=x", directives{}, true},
		{"_HLS_part=%zz", directives{}, true},
	}
	for _, c := range cases {
		got, err := parseDirectives(c.raw)
		if (err != nil) != c.isErr || err == nil && got != c.want {
			t.Errorf("parseDirectives(%q) = %+v, %v; want %+v", c.raw, got, err, c.want)
		}
	}
}

func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{"_HLS_msn=5&_HLS_part=2&token=x", "_HLS_skip=v2", "a=%zz&_HLS_msn=1", "&&=&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := parseDirectives(raw)
		if err != nil {
			return
		}
		if playlist.SafeQuery(d.query) != d.query {
			t.Fatalf("passthrough query %q is not playlist-safe", d.query)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                      false,
		"gzip":                  true,
		"gzip, deflate, br":     true,
		"br;q=1.0, gzip;q=0.8":  true,
		"gzip;q=0":              false,
		"*":                     true,
		"*;q=0":                 false,
		"identity":              false,
		"deflate, *;q=0.1":      true,
		"GZIP":                  true,
		"gzip;q=0, *;q=1":       false,
		"x-gzip":                true,
		" gzip ; q = 0.5 , br ": true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v", h, got)
		}
	}
}

// benchOrigin is an origin holding a full window of two renditions, with date ranges.
func benchOrigin(b *testing.B) (*Origin, *broadcast, *rendition) {
	b.Helper()
	o := New(Config{DateRanges: true})
	b.Cleanup(func() { _ = o.Close() })
	pub := origintest.New(o, origintest.Config{Backfill: 14, CueEvery: 3})
	ctx := context.Background()
	if err := pub.Open(ctx); err != nil {
		b.Fatal(err)
	}
	for range 3 {
		if err := pub.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	bc := o.lookup("test")
	return o, bc, bc.renditions["720p"]
}

func BenchmarkPlaylistRender(b *testing.B) {
	o, bc, rd := benchOrigin(b)
	for _, c := range []struct {
		name string
		skip playlist.Skip
		gzip bool
	}{
		{"full", playlist.SkipNone, false},
		{"delta", playlist.SkipSegments, false},
		{"delta-v2", playlist.SkipSegmentsAndDateRanges, false},
		{"full-gzip", playlist.SkipNone, true},
		{"delta-gzip", playlist.SkipSegments, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				buf := o.bufs.get()
				bc.mu.RLock()
				*buf = bc.appendMedia((*buf)[:0], rd, c.skip, "token=abc")
				bc.mu.RUnlock()
				out := *buf
				if c.gzip {
					zb := o.bufs.get()
					*zb = o.gzip((*zb)[:0], out)
					out = *zb
					o.bufs.put(zb)
				}
				size = len(out)
				o.bufs.put(buf)
			}
			b.ReportMetric(float64(size), "bytes/playlist")
		})
	}
}

// discard is a minimal ResponseWriter, so the benchmark measures the origin, not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchServe(b *testing.B, file string) {
	o, _, _ := benchOrigin(b)
	path := media.PlaybackPrefix + media.PlaybackName("us-east-1", "000000000000", "test") + "/720p/" + file
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := &discard{h: http.Header{}}
	o.ServeHTTP(w, req)
	if w.h.Get("Cache-Control") != cacheObject && w.h.Get("Content-Type") != typePlaylist {
		b.Fatalf("%s not served: %v", file, w.h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		o.ServeHTTP(w, req)
	}
}

func BenchmarkPartServe(b *testing.B)     { benchServe(b, "part14.1.m4s") }
func BenchmarkSegmentServe(b *testing.B)  { benchServe(b, "seg10.m4s") }
func BenchmarkPlaylistServe(b *testing.B) { benchServe(b, "index.m3u8?token=abc") }
