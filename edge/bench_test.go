package edge

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkEdgeHit measures the edge's own cost for a cache hit on a part (no network): the
// fasthttp handler and the net/http one.
func BenchmarkEdgeHit(b *testing.B) {
	r := newRig(b, Config{}, "test")
	r.publish("test", 2)
	part := path("test", fmt.Sprintf("720p/part%d.%d.m4s", 100, 1))
	resp, body := get(b, r.http+part)
	if resp.StatusCode != 200 {
		b.Fatalf("part: %d", resp.StatusCode)
	}
	b.Run("fasthttp", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var ctx fasthttp.RequestCtx
			for pb.Next() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI(part)
				r.edge.ServeFastHTTP(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatal(ctx.Response.StatusCode())
				}
			}
		})
	})
	b.Run("net/http", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w := httptest.NewRecorder()
				r.edge.ServeHTTP(w, httptest.NewRequest("GET", part, nil))
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	})
}

// BenchmarkStreamingFanOut1000 streams one growing segment to 1,000 viewers through one edge
// and reports the distribution of per-part delivery delay behind the origin.
func BenchmarkStreamingFanOut1000(b *testing.B) {
	r := newRig(b, Config{}, "test")
	r.publish("test", 2)
	for i := 0; i < b.N; i++ {
		d := fanOut(b, r, 1000)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(d[len(d)-1].Microseconds())/1000, "max-ms")
	}
}

// BenchmarkEdgeViewerRequests measures the edge's cost per viewer for what every LL-HLS viewer
// asks each part: the media playlist (with its own viewer session, gzip accepted, as Go's and
// browsers' clients do) and the part, both cache hits. The playlist's per-viewer rewrite and
// compression is what all the waiters of a blocking reload do at once when a part completes.
func BenchmarkEdgeViewerRequests(b *testing.B) {
	r := newRig(b, Config{}, "test")
	r.publish("test", 2)
	for _, c := range []struct{ name, uri string }{
		{"playlist", path("test", "720p/index.m3u8") + "?_HLS_msn=100&_HLS_part=1&vs=0123456789abcdef"},
		{"part", path("test", fmt.Sprintf("720p/part%d.%d.m4s", 100, 1)) + "?vs=0123456789abcdef"},
		// As a public media playlist lists it: the session is in playlist URIs only.
		{"part-listed", path("test", fmt.Sprintf("720p/part%d.%d.m4s", 100, 1))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.SetRequestURI(c.uri)
					ctx.Request.Header.Set("Accept-Encoding", "gzip")
					r.edge.ServeFastHTTP(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatal(ctx.Response.StatusCode())
					}
				}
			})
		})
	}
}
