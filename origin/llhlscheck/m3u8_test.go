package llhlscheck

import "testing"

const sample = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.0
#EXT-X-PART-INF:PART-TARGET=0.333
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-SKIP:SKIPPED-SEGMENTS=2
#EXT-X-MAP:URI="init0.mp4?t=1"
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z
#EXTINF:2,
seg102.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:06.000Z
#EXT-X-PART:DURATION=0.333,URI="part103.0.m4s",INDEPENDENT=YES
#EXT-X-DISCONTINUITY
#EXT-X-PART:DURATION=0.333,URI="part103.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part103.2.m4s"
#EXT-X-RENDITION-REPORT:URI="../b/index.m3u8",LAST-MSN=103,LAST-PART=1
#EXT-X-PREFETCH:seg103.m4s
`

func TestParseMedia(t *testing.T) {
	pl, err := ParseMedia([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	last, ok := pl.LastPart()
	switch {
	case pl.Version != 9 || pl.TargetDuration != 2 || pl.PartTarget != 0.333 || pl.Skip.SkippedSegments != 2:
		t.Errorf("header: %+v", pl)
	case len(pl.Segments) != 1 || pl.Segments[0].MSN != 102 || pl.Segments[0].Map != "init0.mp4?t=1":
		t.Errorf("segments: %+v", pl.Segments)
	case pl.Pending == nil || pl.Pending.MSN != 103 || !ok || last.Index != 1 || last.MSN != 103:
		t.Errorf("pending: %+v", pl.Pending)
	case len(pl.OrderErrors) != 1:
		t.Errorf("EXT-X-DISCONTINUITY after a part not caught: %v", pl.OrderErrors)
	case len(pl.Prefetch) != 1 || len(pl.Reports) != 1 || unquote(pl.PreloadHints[0]["URI"]) != "part103.2.m4s":
		t.Errorf("trailer: %+v", pl)
	case requiredVersion(pl) != 9:
		t.Errorf("required version %d", requiredVersion(pl))
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a,b\"\nx.m3u8\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-PART:DURATION=\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if pl, err := ParseMedia(b); err == nil {
			pl.LastPart()
			pl.Duration()
			requiredVersion(pl)
		}
		_, _ = ParseMultivariant(b)
	})
}

// A part's attributes are checked as any attribute list's are: a repeated or malformed one is
// an error, and a value is read whichever order the attributes come in.
func TestParseMediaPartAttributes(t *testing.T) {
	head := "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
	for _, bad := range []string{
		`#EXT-X-PART:DURATION=0.2,URI="a.m4s",DURATION=0.3`,
		`#EXT-X-PART:DURATION=0.2,URI="a.m4s`,
		`#EXT-X-PART:=0.2`,
		`#EXT-X-PART:URI="a.m4s"x`,
		`#EXT-X-PART:URI="a.m4s"`,
	} {
		if _, err := ParseMedia([]byte(head + bad + "\n")); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	pl, err := ParseMedia([]byte(head + `#EXT-X-PART:GAP=YES,INDEPENDENT=YES,URI="a.m4s",DURATION=0.25` + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := pl.LastPart()
	if !ok || p.URI != "a.m4s" || p.Duration != 0.25 || !p.Independent || !p.Gap {
		t.Fatalf("part %+v", p)
	}
}
