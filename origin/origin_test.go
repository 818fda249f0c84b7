package origin_test

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	gohls "github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/llhlscheck"
	"glasscast/origin/origintest"
)

// stepped is a stream published one part at a time by the test itself.
func stepped(t *testing.T, cfg origin.Config, pcfg origintest.Config) *liveStream {
	t.Helper()
	return startStream(t, cfg, pcfg)
}

func steps(t *testing.T, s *liveStream, n int) {
	t.Helper()
	for range n {
		if err := s.pub.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func mediaPlaylist(t *testing.T, s *liveStream, rendition, query string) *llhlscheck.MediaPlaylist {
	t.Helper()
	u := s.path(rendition, "index.m3u8")
	if query != "" {
		u += "?" + query
	}
	status, _, body := get(t, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, status, body)
	}
	pl, err := llhlscheck.ParseMedia(body)
	if err != nil {
		t.Fatalf("%s: %v\n%s", u, err, body)
	}
	return pl
}

func TestOfflineUntilFirstPart(t *testing.T) {
	o := origin.New(origin.Config{})
	defer o.Close()
	srv := newServer(t, o)
	mv := srv + media.MultivariantPath(testRegion, testAccount, "test")

	status, h, _ := get(t, mv)
	if status != http.StatusNotFound || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("offline channel: %d %v", status, h)
	}
	pub := origintest.New(o, origintest.Config{})
	if err := pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, mv); status != http.StatusNotFound {
		t.Fatalf("no part yet: %d, want 404", status)
	}
	if err := pub.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	status, h, body := get(t, mv)
	if status != http.StatusOK || h.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Fatalf("after first part: %d %v", status, h)
	}
	if _, err := gohls.Unmarshal(body); err != nil {
		t.Fatalf("gohlslib rejects the multivariant playlist: %v\n%s", err, body)
	}
}

func TestMultivariant(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 3})
	status, _, body := get(t, s.url())
	if status != http.StatusOK {
		t.Fatal(status)
	}
	m, err := llhlscheck.ParseMultivariant(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Variants) != 2 || !m.IndependentSegments {
		t.Fatalf("variants %d, independent %v:\n%s", len(m.Variants), m.IndependentSegments, body)
	}
	first := m.Variants[0]
	if first.URI != "us-east-1.000000000000.channel.test/720p/index.m3u8?token=abc" {
		t.Errorf("first variant URI %q", first.URI)
	}
	a := first.Attrs
	if a["RESOLUTION"] != "1280x720" || a["FRAME-RATE"] != "30.000" || a["CODECS"] != `"avc1.64001f,mp4a.40.2"` {
		t.Errorf("attributes %v", a)
	}
	// The synthetic 720p parts weigh more than the declared 2 Mb/s: BANDWIDTH follows them.
	var bw, avg int
	if _, err := fmtSscan(a["BANDWIDTH"], &bw); err != nil || bw <= 2_000_000 {
		t.Errorf("BANDWIDTH %q not raised to the measured peak", a["BANDWIDTH"])
	}
	if _, err := fmtSscan(a["AVERAGE-BANDWIDTH"], &avg); err != nil || avg > bw || avg == 0 {
		t.Errorf("AVERAGE-BANDWIDTH %q with BANDWIDTH %d", a["AVERAGE-BANDWIDTH"], bw)
	}
	if strings.Contains(string(body), "EXT-X-VERSION") {
		t.Error("multivariant declares a version it does not need")
	}
}

func TestHeadersAndMethods(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	steps(t, s, 2)
	cases := []struct {
		name, method, url string
		status            int
		ctype, cache      string
	}{
		{"multivariant", "GET", s.url(), 200, "application/vnd.apple.mpegurl", "public, max-age=2"},
		{"playlist", "GET", s.path("720p", "index.m3u8"), 200, "application/vnd.apple.mpegurl", "public, max-age=1"},
		{"blocking", "GET", s.path("720p", "index.m3u8?_HLS_msn=2&_HLS_part=0"), 200, "application/vnd.apple.mpegurl", "public, max-age=4"},
		{"init", "GET", s.path("720p", "init0.mp4"), 200, "video/mp4", "public, max-age=31536000, immutable"},
		{"segment", "GET", s.path("720p", "seg1.m4s"), 200, "video/mp4", "public, max-age=31536000, immutable"},
		{"part", "GET", s.path("720p", "part2.1.m4s"), 200, "video/mp4", "public, max-age=31536000, immutable"},
		{"head part", "HEAD", s.path("360p", "part2.0.m4s"), 200, "video/mp4", "public, max-age=31536000, immutable"},
		{"missing", "GET", s.path("720p", "seg99.m4s"), 404, "text/plain; charset=utf-8", "no-cache"},
		{"non-canonical", "GET", s.path("720p", "seg01.m4s"), 404, "text/plain; charset=utf-8", "no-cache"},
		{"no rendition", "GET", s.path("1080p", "index.m3u8"), 404, "text/plain; charset=utf-8", "no-cache"},
		{"bad path", "GET", s.srv.URL + "/api/video/v1/x/../y", 404, "text/plain; charset=utf-8", "no-cache"},
		{"bad directive", "GET", s.path("720p", "index.m3u8?_HLS_msn=x"), 400, "text/plain; charset=utf-8", "no-cache"},
		{"post", "POST", s.url(), 405, "text/plain; charset=utf-8", "no-cache"},
		{"options", "OPTIONS", s.url(), 204, "", "no-cache"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := do(t, c.method, c.url, "Access-Control-Request-Headers", "range")
			if status != c.status || h.Get("Content-Type") != c.ctype || h.Get("Cache-Control") != c.cache {
				t.Errorf("%d %q %q, want %d %q %q", status, h.Get("Content-Type"), h.Get("Cache-Control"), c.status, c.ctype, c.cache)
			}
			if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Expose-Headers") != "Age, Date" {
				t.Errorf("CORS headers %v", h)
			}
			if c.method == "HEAD" && (len(body) != 0 || h.Get("Content-Length") == "0") {
				t.Errorf("HEAD: body %d bytes, Content-Length %q", len(body), h.Get("Content-Length"))
			}
			if c.method == "POST" && h.Get("Allow") != "GET, HEAD, OPTIONS" {
				t.Errorf("Allow %q", h.Get("Allow"))
			}
			if c.method == "OPTIONS" && h.Get("Access-Control-Allow-Headers") != "range" {
				t.Errorf("preflight %v", h)
			}
		})
	}
}

func TestSegmentIsItsParts(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	_, _, seg := get(t, s.path("720p", "seg1.m4s"))
	var joined []byte
	for i := range s.pub.PartsPerSegment() {
		_, _, p := get(t, s.path("720p", partName(1, i)))
		joined = append(joined, p...)
	}
	if !bytes.Equal(seg, joined) || len(seg) == 0 {
		t.Fatalf("segment %d bytes, its parts %d bytes", len(seg), len(joined))
	}
	// Range requests are served from the parts in place.
	status, _, tail := get(t, s.path("720p", "seg1.m4s"), "Range", "bytes=100-")
	if status != http.StatusPartialContent || !bytes.Equal(tail, seg[100:]) {
		t.Fatalf("range: %d, %d bytes", status, len(tail))
	}
}

func TestThirdPartyParserAcceptsPlaylists(t *testing.T) {
	s := stepped(t, origin.Config{DateRanges: true}, origintest.Config{Backfill: 14, CueEvery: 2})
	steps(t, s, 2)
	for _, q := range []string{"", "_HLS_skip=YES", "_HLS_skip=v2", "_HLS_msn=14&_HLS_part=1"} {
		u := s.path("360p", "index.m3u8?"+q)
		_, _, body := get(t, u)
		if _, err := gohls.Unmarshal(body); err != nil {
			t.Errorf("gohlslib rejects ?%s: %v\n%s", q, err, body)
		}
	}
}

func TestTokenCarriedAndHLSParamsStripped(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 8})
	steps(t, s, 2)
	_, _, body := get(t, s.path("720p", `index.m3u8?token=a%20b&_HLS_msn=8&x="y"&_HLS_part=0`))
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "_HLS_") {
			t.Errorf("_HLS_ parameter passed on: %s", line)
		}
		if strings.Contains(line, ".m") && !strings.Contains(line, "?token=a%20b&x=%22y%22") {
			t.Errorf("token not carried (or quote not escaped): %s", line)
		}
	}
}

func TestDateRanges(t *testing.T) {
	s := stepped(t, origin.Config{DateRanges: true}, origintest.Config{Backfill: 14, CueEvery: 3})
	pl := mediaPlaylist(t, s, "720p", "")
	if len(pl.DateRanges) == 0 || pl.ServerControl["CAN-SKIP-DATERANGES"] != "YES" {
		t.Fatalf("no date ranges or CAN-SKIP-DATERANGES:\n%s", pl.Raw)
	}
	if d := pl.DateRanges[0]; d.Attrs["X-TEXT"] == "" || d.Start.IsZero() {
		t.Errorf("date range %+v", d)
	}
	v2 := mediaPlaylist(t, s, "720p", "_HLS_skip=v2")
	if v2.Skip == nil || !v2.Skip.HasRecentlyRemoved || len(v2.Skip.RecentlyRemoved) == 0 || v2.Version != 10 {
		t.Fatalf("v2 delta: %+v version %d\n%s", v2.Skip, v2.Version, v2.Raw)
	}
	if len(v2.DateRanges) >= len(pl.DateRanges) {
		t.Errorf("v2 delta keeps %d of %d date ranges", len(v2.DateRanges), len(pl.DateRanges))
	}
	off := stepped(t, origin.Config{}, origintest.Config{ChannelID: "plain", Backfill: 4, CueEvery: 1})
	if pl := mediaPlaylist(t, off, "720p", ""); len(pl.DateRanges) > 0 || pl.ServerControl["CAN-SKIP-DATERANGES"] != "" {
		t.Errorf("date ranges without Config.DateRanges:\n%s", pl.Raw)
	}
}

func TestStatsAndWaiters(t *testing.T) {
	s := stepped(t, origin.Config{}, origintest.Config{Backfill: 2})
	get(t, s.url())
	get(t, s.path("720p", "index.m3u8"))
	get(t, s.path("720p", "init0.mp4"))
	get(t, s.path("720p", "seg0.m4s"))
	get(t, s.path("720p", partName(0, 0)))
	done := make(chan int, 1)
	u := s.path("720p", "index.m3u8?_HLS_msn=2&_HLS_part=0")
	go func() {
		status, _, _ := fetch(u)
		done <- status
	}()
	waitFor(t, func() bool { return s.origin.Stats().Blocked == 1 })
	steps(t, s, 1)
	if status := <-done; status != http.StatusOK {
		t.Fatalf("blocking reload: %d", status)
	}
	st := s.origin.Stats()
	want := origin.Stats{Multivariant: 1, Playlists: 1, BlockingPlaylists: 1, Parts: 1, Segments: 1, Inits: 1, Broadcasts: 1}
	st.HeldBytes = 0
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestRegionAndAccountMustMatch(t *testing.T) {
	o := origin.New(origin.Config{Region: testRegion, Account: testAccount})
	defer o.Close()
	base := newServer(t, o)
	pub := origintest.New(o, origintest.Config{Backfill: 1})
	if err := pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, base+media.MultivariantPath(testRegion, testAccount, "test")); status != http.StatusOK {
		t.Fatalf("own region: %d", status)
	}
	for _, p := range []string{
		media.MultivariantPath("eu-west-1", testAccount, "test"),
		media.MultivariantPath(testRegion, "111111111111", "test"),
	} {
		if status, _, _ := get(t, base+p); status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, status)
		}
	}
}

// TestPartHoldBack: PART-HOLD-BACK is the configured number of part targets in every
// rendition, three by default, and never under two, the spec's minimum.
func TestPartHoldBack(t *testing.T) {
	for _, c := range []struct {
		cfg  float64
		want float64
	}{{0, 3}, {2, 2}, {2.5, 2.5}, {1, 2}} {
		s := stepped(t, origin.Config{PartHoldBack: c.cfg}, origintest.Config{Backfill: 4})
		steps(t, s, 1)
		for _, r := range []string{"720p", "360p"} {
			_, _, body := get(t, s.path(r, "index.m3u8"))
			var pt, phb float64
			for _, line := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(line, "#EXT-X-PART-INF:PART-TARGET="); ok {
					pt, _ = strconv.ParseFloat(v, 64)
				}
				if _, v, ok := strings.Cut(line, "PART-HOLD-BACK="); ok {
					phb, _ = strconv.ParseFloat(strings.Split(v, ",")[0], 64)
				}
			}
			if pt == 0 || math.Abs(phb-c.want*pt) > 1e-4 {
				t.Errorf("config %g, %s: PART-HOLD-BACK %g with PART-TARGET %g, want %g of them", c.cfg, r, phb, pt, c.want)
			}
		}
	}
}
