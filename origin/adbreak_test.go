package origin_test

import (
	"slices"
	"strings"
	"testing"

	"glasscast/origin"
	"glasscast/origin/llhlscheck"
	"glasscast/origin/origintest"
	"glasscast/origin/playlist"
)

// TestAdBreakMarkers reads both renditions' playlists of a stream with ad breaks: each break
// is an EXT-X-DATERANGE pair (SCTE35-OUT, then SCTE35-IN with DURATION) and EXT-X-CUE-OUT/IN
// on the same segments in every rendition, shown even with timed-metadata date ranges off.
// TestConformance runs the LL-HLS rows (delta updates included) over such a stream.
func TestAdBreakMarkers(t *testing.T) {
	t.Parallel()
	s := startStream(t, origin.Config{}, origintest.Config{Backfill: 13, CueEvery: 3, AdBreakEvery: 4})
	type marker struct {
		msn  uint64
		line string
	}
	var got [][]marker
	for _, r := range []string{"720p", "360p"} {
		_, _, body := get(t, s.path(r, playlist.MediaPlaylistName))
		var ms []marker
		var msn uint64
		for _, line := range strings.Split(string(body), "\n") {
			switch {
			case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
				if _, err := fmtSscan(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), &msn); err != nil {
					t.Fatal(err)
				}
			case strings.HasPrefix(line, "#EXT-X-DATERANGE"), strings.HasPrefix(line, "#EXT-X-CUE"):
				if strings.Contains(line, "X-TEXT") {
					t.Errorf("%s: timed metadata shown with date ranges off: %s", r, line)
				}
				ms = append(ms, marker{msn, line})
			case strings.HasPrefix(line, "#EXTINF"):
				msn++
			}
		}
		if _, err := llhlscheck.ParseMedia(body); err != nil {
			t.Fatal(err)
		}
		got = append(got, ms)
	}
	if len(got[0]) < 4 || !slices.Equal(got[0], got[1]) {
		t.Fatalf("markers differ or are missing:\n%v\n%v", got[0], got[1])
	}
	for _, m := range got[0] {
		switch {
		case strings.HasPrefix(m.line, "#EXT-X-CUE-OUT:DURATION=2"), m.line == "#EXT-X-CUE-IN":
		case strings.Contains(m.line, "SCTE35-OUT=0xFC01") && strings.Contains(m.line, "PLANNED-DURATION=2,") && m.msn%4 == 0:
		case strings.Contains(m.line, "SCTE35-IN=0xFC02") && strings.Contains(m.line, ",DURATION=2,") && m.msn%4 == 2:
		default:
			t.Errorf("unexpected marker at %d: %s", m.msn, m.line)
		}
	}
}
