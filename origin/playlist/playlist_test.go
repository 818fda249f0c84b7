package playlist

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// window builds n complete segments of 1 s in parts of 0.25 s, plus a segment in progress with
// two parts; segment 2 has a date range and segment 3 a new init generation after a
// discontinuity.
func window(n int) *Media {
	m := &Media{
		TargetDuration:    1,
		PartTarget:        250 * time.Millisecond,
		PartHoldBack:      3,
		CanSkipUntil:      6 * time.Second,
		CanSkipDateRanges: true,
		MediaSequence:     10,
		Query:             "token=x",
		Reports:           []RenditionReport{{Rendition: "360p", LastMSN: uint64(10 + n), LastPart: 1}},
		RecentlyRemoved:   []string{"old"},
	}
	for i := 0; i <= n; i++ {
		s := Segment{MSN: uint64(10 + i), ProgramDateTime: t0.Add(time.Duration(i) * time.Second), Complete: i < n}
		parts := 4
		if i == n {
			parts = 2
		}
		for j := range parts {
			s.Parts = append(s.Parts, Part{Duration: 250 * time.Millisecond, Independent: j == 0})
			s.Duration += 250 * time.Millisecond
		}
		if i == 2 {
			s.DateRanges = []DateRange{{ID: "cue-1", Start: s.ProgramDateTime, Text: `say "hi"`}}
		}
		if i >= 3 {
			s.InitGeneration = 1
			s.Discontinuity = i == 3
		}
		m.Segments = append(m.Segments, s)
	}
	return m
}

func TestMediaFull(t *testing.T) {
	got := string(window(4).Append(nil, SkipNone))
	want := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK=0.75
#EXT-X-PART-INF:PART-TARGET=0.25
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init0.mp4?token=x"
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z
#EXTINF:1,
seg10.m4s?token=x
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:01.000Z
#EXTINF:1,
seg11.m4s?token=x
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:02.000Z
#EXT-X-DATERANGE:ID="cue-1",START-DATE="2026-11-25T10:00:02.000Z",X-TEXT=0x7361792022686922
#EXT-X-PART:DURATION=0.25,URI="part12.0.m4s?token=x",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25,URI="part12.1.m4s?token=x"
#EXT-X-PART:DURATION=0.25,URI="part12.2.m4s?token=x"
#EXT-X-PART:DURATION=0.25,URI="part12.3.m4s?token=x"
#EXTINF:1,
seg12.m4s?token=x
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init1.mp4?token=x"
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:03.000Z
#EXT-X-PART:DURATION=0.25,URI="part13.0.m4s?token=x",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25,URI="part13.1.m4s?token=x"
#EXT-X-PART:DURATION=0.25,URI="part13.2.m4s?token=x"
#EXT-X-PART:DURATION=0.25,URI="part13.3.m4s?token=x"
#EXTINF:1,
seg13.m4s?token=x
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:04.000Z
#EXT-X-PART:DURATION=0.25,URI="part14.0.m4s?token=x",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25,URI="part14.1.m4s?token=x"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part14.2.m4s?token=x"
#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8?token=x",LAST-MSN=14,LAST-PART=1
#EXT-X-PREFETCH:seg14.m4s?token=x
#EXT-X-PREFETCH:seg15.m4s?token=x
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMediaDelta(t *testing.T) {
	m := window(9) // 9.5 s listed: segments ending 6 s or more before the end are skippable
	if k := m.Skipped(); k != 3 {
		t.Fatalf("Skipped() = %d, want 3", k)
	}
	yes := string(m.Append(nil, SkipSegments))
	for _, want := range []string{
		"#EXT-X-VERSION:9\n",
		"#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-DATERANGE:ID=\"cue-1\"",
		"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4?token=x\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:03.000Z\n",
	} {
		if !strings.Contains(yes, want) {
			t.Errorf("YES delta lacks %q:\n%s", want, yes)
		}
	}
	if strings.Contains(yes, "seg12.m4s") || !strings.Contains(yes, "seg13.m4s") {
		t.Errorf("YES delta skipped the wrong segments:\n%s", yes)
	}
	v2 := string(m.Append(nil, SkipSegmentsAndDateRanges))
	if !strings.Contains(v2, "#EXT-X-VERSION:10\n") || !strings.Contains(v2, `RECENTLY-REMOVED-DATERANGES="old"`) || strings.Contains(v2, "DATERANGE:") {
		t.Errorf("v2 delta:\n%s", v2)
	}
	m.CanSkipDateRanges = false
	if v2 := string(m.Append(nil, SkipSegmentsAndDateRanges)); !strings.Contains(v2, "#EXT-X-VERSION:9\n") || !strings.Contains(v2, "DATERANGE:") {
		t.Errorf("v2 without CAN-SKIP-DATERANGES is a YES delta:\n%s", v2)
	}
	// Nothing old enough: the full playlist.
	short := window(4)
	if d := string(short.Append(nil, SkipSegments)); d != string(short.Append(nil, SkipNone)) {
		t.Errorf("delta of a short playlist:\n%s", d)
	}
}

func TestMediaEndedAndNormal(t *testing.T) {
	m := window(4)
	m.Segments = m.Segments[:4]
	m.Ended = true
	got := string(m.Append(nil, SkipSegments))
	if !strings.HasSuffix(got, "#EXT-X-ENDLIST\n") || strings.Contains(got, "PRELOAD-HINT") || strings.Contains(got, "PREFETCH") || strings.Contains(got, "SKIP:") {
		t.Errorf("ended:\n%s", got)
	}
	n := window(4)
	n.Segments = n.Segments[:4]
	n.PartTarget, n.PartHoldBack = 0, 0
	got = string(n.Append(nil, SkipNone))
	for _, bad := range []string{"EXT-X-PART", "PART-HOLD-BACK", "PREFETCH", "PRELOAD"} {
		if strings.Contains(got, bad) {
			t.Errorf("NORMAL playlist has %s:\n%s", bad, got)
		}
	}
}

func TestPartWindow(t *testing.T) {
	m := window(9)
	got := string(m.Append(nil, SkipNone))
	// 9.5 s listed, TD 1: parts only for segments starting within 3 s of the end (17, 18, 19).
	if strings.Contains(got, "part16.") || !strings.Contains(got, "part17.0") {
		t.Errorf("parts listed beyond 3 × TD:\n%s", got)
	}
}

func TestRoundingKeepsRatios(t *testing.T) {
	m := window(2)
	m.PartTarget = time.Second / 3
	m.PartHoldBack = 3
	got := string(m.Append(nil, SkipNone))
	if !strings.Contains(got, "PART-HOLD-BACK=1.00002") || !strings.Contains(got, "PART-TARGET=0.33334") {
		t.Errorf("rounding:\n%s", got)
	}
	// The spec's minimum is two part targets; less is raised to it.
	m.PartHoldBack = 1.5
	got = string(m.Append(nil, SkipNone))
	if !strings.Contains(got, "PART-HOLD-BACK=0.66668") {
		t.Errorf("minimum:\n%s", got)
	}
}

func TestMultivariant(t *testing.T) {
	m := Multivariant{IndependentSegments: true, Variants: []Variant{
		{URI: VariantURI("us-east-1.0.channel.c", "720p", "token=x"), Bandwidth: 2000001, AverageBandwidth: 1500000, Width: 1280, Height: 720, FrameRate: 29.97, Codecs: "avc1.64001f,mp4a.40.2"},
		{URI: VariantURI("us-east-1.0.channel.c", "audio", ""), Bandwidth: 96000, Codecs: "mp4a.40.2"},
	}}
	want := `#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=2000001,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,FRAME-RATE=29.970,CODECS="avc1.64001f,mp4a.40.2"
us-east-1.0.channel.c/720p/index.m3u8?token=x
#EXT-X-STREAM-INF:BANDWIDTH=96000,CODECS="mp4a.40.2"
us-east-1.0.channel.c/audio/index.m3u8
`
	if got := string(m.Append(nil)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSafeQueryAndID(t *testing.T) {
	cases := map[string]string{
		"token=abc.def-ghi_~":  "token=abc.def-ghi_~",
		`a="b c"`:              "a=%22b%20c%22",
		"t=%41&x=1":            "t=%41&x=1",
		"x=\n\x00\xff":         "x=%0A%00%FF",
		"token=eyJ.a+b/c==&k=": "token=eyJ.a+b/c==&k=",
	}
	for in, want := range cases {
		if got := SafeQuery(in); got != want {
			t.Errorf("SafeQuery(%q) = %q, want %q", in, got, want)
		}
	}
	if got := SafeID("a\"b\tc", "f"); got != "a_b_c" {
		t.Errorf("SafeID: %q", got)
	}
	if got := SafeID("", "f"); got != "f" {
		t.Errorf("SafeID empty: %q", got)
	}
}

func FuzzParseObjectName(f *testing.F) {
	for _, s := range []string{"init0.mp4", "seg12.m4s", "part3.4.m4s", "seg012.m4s", "part1..m4s", "init-1.mp4", "seg18446744073709551616.m4s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		o, ok := ParseObjectName(name)
		if !ok {
			return
		}
		var back string
		switch o.Kind {
		case KindInit:
			back = InitName(o.Generation)
		case KindSegment:
			back = SegmentName(o.MSN)
		case KindPart:
			back = PartName(o.MSN, o.Part)
		}
		if back != name {
			t.Fatalf("%q parsed as %+v, which names %q", name, o, back)
		}
	})
}
