package edge

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

const llPlaylist = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-MAP:URI="init.mp4"
#EXTINF:1.000,
seg100.m4s
#EXT-X-PART:DURATION=0.2,URI="part101.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part101.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=101,LAST-PART=0
#EXT-X-RENDITION-REPORT:URI="../160p/index.m3u8",LAST-MSN=101,LAST-PART=0
#EXT-X-PREFETCH:part101.1.m4s
`

// A viewer's share of a rendered playlist, plain or gzipped, is exactly the playlist rewritten
// for that viewer alone: the shared head, and the viewer's query in the rendition reports.
func TestRenderedMatchesRewrite(t *testing.T) {
	noReports := string(bytes.ReplaceAll([]byte(llPlaylist), []byte("#EXT-X-RENDITION-REPORT"), []byte("#EXT-X-OTHER")))
	for _, c := range []struct{ name, playlist, query string }{
		{"reports", llPlaylist, ""},
		{"reports and shared query", llPlaylist, "a=b"},
		{"no reports", noReports, ""},
		{"no reports, shared query", noReports, "a=b"},
		{"empty", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cache renderCache
			var gz gzipper
			for _, reportQ := range []string{"vs=viewer1", "vs=viewer2", ""} {
				r, err := cache.get([]byte(c.playlist), c.query, &gz)
				if err != nil {
					t.Fatal(err)
				}
				want := appendQuery([]byte(c.playlist), c.query, reportQ)
				if got := r.body(reportQ); !bytes.Equal(got, want) {
					t.Fatalf("body for %q:\n%s\nwant\n%s", reportQ, got, want)
				}
				z, err := r.gzip(&gz, reportQ)
				if err != nil {
					t.Fatal(err)
				}
				zr, err := gzip.NewReader(bytes.NewReader(z))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(zr) // checks the CRC and length too
				if err != nil {
					t.Fatalf("gzip for %q: %v", reportQ, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("gunzipped for %q:\n%s\nwant\n%s", reportQ, got, want)
				}
			}
		})
	}
}

// Rendering is shared: the second viewer with the same query gets the same head.
func TestRenderedOncePerQuery(t *testing.T) {
	var cache renderCache
	var gz gzipper
	a, _ := cache.get([]byte(llPlaylist), "", &gz)
	b, _ := cache.get([]byte(llPlaylist), "", &gz)
	if a != b {
		t.Fatal("rendered twice for one query")
	}
	if c, _ := cache.get([]byte(llPlaylist), "x=y", &gz); c == a || c.query != "x=y" {
		t.Fatal("a different query reused the rendering")
	}
}

func FuzzRendered(f *testing.F) {
	f.Add([]byte(llPlaylist), "a=b", "vs=v")
	f.Fuzz(func(t *testing.T, playlist []byte, q, reportQ string) {
		var cache renderCache
		var gz gzipper
		r, err := cache.get(playlist, q, &gz)
		if err != nil {
			t.Fatal(err)
		}
		want := appendQuery(playlist, q, reportQ)
		z, err := r.gzip(&gz, reportQ)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v: got %q want %q", err, got, want)
		}
	})
}

// On a public channel the viewer session goes into the multivariant's URIs and a media
// playlist's rendition reports, not into its object URIs (so the playlist is rendered once for
// all its viewers); each viewer is still counted once, by session, and objects fetched without
// a session add none.
func TestSessionInPlaylistURIsOnly(t *testing.T) {
	r := newRig(t, Config{}, "test")
	r.publish("test", 2)
	resp, mv := get(t, r.http+path("test", "")+"?vs=viewer1")
	if resp.StatusCode != 200 || !bytes.Contains(mv, []byte("index.m3u8?vs=viewer1")) {
		t.Fatalf("multivariant %d:\n%s", resp.StatusCode, mv)
	}
	for _, vs := range []string{"viewer1", "viewer2"} {
		resp, pl := get(t, r.http+path("test", "720p/index.m3u8")+"?vs="+vs, "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("media playlist: %d %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(pl))
		if err != nil {
			t.Fatal(err)
		}
		if pl, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(pl, []byte("\n")) {
			isReport := bytes.HasPrefix(line, []byte("#EXT-X-RENDITION-REPORT:"))
			if has := bytes.Contains(line, []byte("vs=")); has != isReport || isReport && !bytes.Contains(line, []byte("?vs="+vs+`"`)) {
				t.Fatalf("%s: line %q", vs, line)
			}
		}
		if !bytes.Contains(pl, []byte("#EXT-X-RENDITION-REPORT:")) {
			t.Fatalf("no rendition reports:\n%s", pl)
		}
	}
	part := path("test", "720p/part100.1.m4s")
	if resp, _ := get(t, r.http+part); resp.StatusCode != 200 {
		t.Fatalf("part: %d", resp.StatusCode)
	}
	if n := len(r.edge.viewers.Snapshot(time.Now())["test"]); n != 2 {
		t.Fatalf("%d viewers counted, want 2", n)
	}
}
