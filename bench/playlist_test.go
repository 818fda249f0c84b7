package bench

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"glasscast/origin/llhlscheck"
)

// The load client's lean playlist reader must see what the conformance parser sees: every
// part's URI, its end by program-date-time, which segment is the newest, and the part to block
// on next, for Glasscast's playlists (whole and delta) and MediaMTX's (gap segments, dates only
// on segments with parts, queries on every URI, preload hints in its own naming).
func TestScanMediaAgreesWithParser(t *testing.T) {
	glasscast := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,PART-HOLD-BACK=0.612
#EXT-X-PART-INF:PART-TARGET=0.204
#EXT-X-MEDIA-SEQUENCE:121359772
#EXT-X-MAP:URI="init121359772.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T07:31:29.371Z
#EXTINF:1,
seg121359772.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T07:31:30.371Z
#EXT-X-PART:DURATION=0.2,URI="part121359773.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="part121359773.1.m4s"
#EXT-X-PART:DURATION=0.2,URI="part121359773.2.m4s"
#EXT-X-PART:DURATION=0.2,URI="part121359773.3.m4s"
#EXT-X-PART:DURATION=0.2,URI="part121359773.4.m4s"
#EXTINF:1,
seg121359773.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T07:31:31.371Z
#EXT-X-PART:DURATION=0.2,URI="part121359774.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="part121359774.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part121359774.2.m4s"
#EXT-X-PREFETCH:seg121359775.m4s
`
	delta := strings.Replace(strings.Replace(glasscast, "#EXT-X-VERSION:6", "#EXT-X-VERSION:9", 1),
		"#EXT-X-PROGRAM-DATE-TIME:2026-12-04T07:31:29.371Z\n#EXTINF:1,\nseg121359772.m4s\n", "#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n", 1)
	mediamtx := `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.50000,CAN-SKIP-UNTIL=6.00000
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:5
#EXT-X-MAP:URI="60e2_video1_init.mp4?session=dc59"
#EXT-X-GAP
#EXTINF:1.00000,
gap.mp4
#EXTINF:1.00000,
60e2_video1_seg6.mp4?session=dc59
#EXT-X-PROGRAM-DATE-TIME:2026-12-04T07:32:11.389Z
#EXT-X-PART:DURATION=0.20000,URI="60e2_video1_part15.mp4?session=dc59",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="60e2_video1_part16.mp4?session=dc59"
#EXT-X-PART:DURATION=0.20000,URI="60e2_video1_part17.mp4?session=dc59"
#EXT-X-PART:DURATION=0.20000,URI="60e2_video1_part18.mp4?session=dc59"
#EXT-X-PART:DURATION=0.20000,URI="60e2_video1_part19.mp4?session=dc59"
#EXTINF:1.00000,
60e2_video1_seg7.mp4?session=dc59
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="60e2_video1_part20.mp4?session=dc59"
`
	ended := strings.Replace(mediamtx, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"60e2_video1_part20.mp4?session=dc59\"\n", "#EXT-X-ENDLIST\n", 1)
	for _, c := range []struct {
		name      string
		text      string
		nextMSN   uint64
		nextPart  int
		lastParts int // parts in the newest segment
	}{
		{"glasscast", glasscast, 121359774, 2, 2},
		{"glasscast delta", delta, 121359774, 2, 2},
		{"mediamtx", mediamtx, 8, 0, 5},
		{"mediamtx ended", ended, 8, 0, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, err := llhlscheck.ParseMedia([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			var got livePlaylist
			if err := scanMedia([]byte(c.text), &got); err != nil {
				t.Fatal(err)
			}
			if got.ended != want.Ended || got.partTarget != want.PartTarget {
				t.Errorf("ended %v part target %v, want %v %v", got.ended, got.partTarget, want.Ended, want.PartTarget)
			}
			segs := want.Segments
			if want.Pending != nil {
				segs = append(segs, want.Pending)
			}
			skipped := 0
			if want.Skip != nil {
				skipped = want.Skip.SkippedSegments
			}
			i, newest := 0, 0
			for si, s := range segs {
				end := s.PDT
				for _, p := range s.Parts {
					end = end.Add(time.Duration(p.Duration * float64(time.Second)))
					if i >= len(got.parts) {
						t.Fatalf("%d parts, want more", len(got.parts))
					}
					g := got.parts[i]
					i++
					if string(g.uri) != p.URI || g.seg-skipped != si || (s.PDT.IsZero() != g.end().IsZero()) || (!s.PDT.IsZero() && !g.end().Equal(end)) {
						t.Errorf("part %d: %s in segment %d ending %v, want %s in %d ending %v", i, g.uri, g.seg-skipped, g.end(), p.URI, si, end)
					}
					if si == len(segs)-1 {
						newest++
					}
					if (g.seg < got.lastSeg) != (si < len(segs)-1) {
						t.Errorf("part %s: newest segment %d, want %d", p.URI, got.lastSeg-skipped, len(segs)-1)
					}
				}
			}
			if i != len(got.parts) || newest != c.lastParts {
				t.Errorf("%d parts (%d in the newest segment), want %d (%d)", len(got.parts), newest, i, c.lastParts)
			}
			if !got.hasNext || got.nextMSN != c.nextMSN || got.nextPart != c.nextPart {
				t.Errorf("next %d.%d (%v), want %d.%d", got.nextMSN, got.nextPart, got.hasNext, c.nextMSN, c.nextPart)
			}
		})
	}
	var pl livePlaylist
	if err := scanMedia([]byte("<html>"), &pl); err == nil {
		t.Error("a body that is not a playlist was read")
	}
	if err := scanMedia([]byte("#EXTM3U\n#EXT-X-PART:URI=\"a.m4s\"\n"), &pl); err == nil {
		t.Error("a part without a duration was read")
	}
}

// Part URLs are the playlist's directory and the URI, as url.ResolveReference makes them.
func TestPartLocation(t *testing.T) {
	media, _ := url.Parse("http://127.0.0.1:8080/api/video/v1/ch/source/index.m3u8?vs=abc&token=x")
	v := &viewer{media: media}
	for _, uri := range []string{"part12.3.m4s", "60e2_video1_part15.mp4?session=dc59", "../other/part1.m4s", "/abs/part.m4s", "http://cdn.example/p.m4s"} {
		if got, want := v.partLocation([]byte(uri)), resolve(media, uri).String(); got != want {
			t.Errorf("%s: %s, want %s", uri, got, want)
		}
	}
}
