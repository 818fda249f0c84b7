package archive

import (
	"os"
	"slices"
	"testing"
	"time"

	"glasscast/archive/layout"
	"glasscast/archive/remux"
	"glasscast/archive/source"
	"glasscast/store"
)

var ladder = []source.Variant{
	{Rendition: "360p", Width: 640, Height: 360, FrameRate: 30, Bandwidth: 800000, Codecs: "avc1.4d401e,mp4a.40.2"},
	{Rendition: "1080p", Width: 1920, Height: 1080, FrameRate: 60, Bandwidth: 6000000, Codecs: "avc1.64002a,mp4a.40.2"},
	{Rendition: "720p", Width: 1280, Height: 720, FrameRate: 30, Bandwidth: 2500000, Codecs: "avc1.64001f,mp4a.40.2"},
	{Rendition: "160p", Width: 284, Height: 160, FrameRate: 30, Bandwidth: 200000, Codecs: "avc1.4d400c,mp4a.40.2"},
}

func names(rss []*renditionState) []string {
	var out []string
	for _, rs := range rss {
		out = append(out, rs.lr.Name)
	}
	return out
}

func TestPlanRenditions(t *testing.T) {
	for _, c := range []struct {
		sel     string
		classes []string
		vs      []source.Variant
		want    []string
	}{
		{"ALL", nil, ladder, []string{"1080p60", "720p30", "360p30", "160p30"}},
		{"CUSTOM", []string{"HD", "LOWEST_RESOLUTION"}, ladder, []string{"720p30", "160p30"}},
		// No SD rendition: the best below it.
		{"CUSTOM", []string{"SD"}, ladder, []string{"360p30"}},
		{"CUSTOM", []string{"FULL_HD", "FULL_HD"}, ladder, []string{"1080p60"}},
		// CUSTOM has no effect on a single rendition (BASIC channels).
		{"CUSTOM", []string{"SD"}, ladder[2:3], []string{"720p30"}},
		{"NONE", nil, ladder, []string{"audio_only"}},
	} {
		r := &recording{meta: meta{Config: store.RecordingConfiguration{Rendition: &store.RenditionConfiguration{RenditionSelection: c.sel, Renditions: c.classes}}}}
		got := r.plan(c.vs)
		if !slices.Equal(names(got), c.want) {
			t.Errorf("%s %v: %v, want %v", c.sel, c.classes, names(got), c.want)
		}
		if c.sel == "NONE" && (!got[0].audioOnly || got[0].lr.Codecs != "mp4a.40.2" || got[0].lr.Height != 0) {
			t.Errorf("audio only rendition: %+v", got[0].lr)
		}
	}
}

func TestThumbnailPlan(t *testing.T) {
	r := &recording{meta: meta{Config: store.RecordingConfiguration{Rendition: &store.RenditionConfiguration{RenditionSelection: "ALL"}}}}
	rss := r.plan(ladder)
	for _, c := range []struct {
		res    string
		name   string
		height int
	}{{"", "1080p60", 0}, {"HD", "720p30", 0}, {"SD", "720p30", 480}, {"LOWEST_RESOLUTION", "160p30", 0}, {"FULL_HD", "1080p60", 0}} {
		rs, h := thumbnailPlan(rss, c.res)
		if rs == nil || rs.lr.Name != c.name || h != c.height {
			t.Errorf("%q: %v %d, want %s %d", c.res, rs, h, c.name, c.height)
		}
	}
	if rs, _ := thumbnailPlan([]*renditionState{{lr: &layout.Rendition{Name: "audio_only"}, audioOnly: true}}, ""); rs != nil {
		t.Error("thumbnails from an audio-only recording")
	}
}

func TestSameMedia(t *testing.T) {
	base := &store.IngestConfig{Video: &store.VideoConfig{Codec: "avc1.64001F", Width: 1280, Height: 720, TargetFramerate: 30, TargetBitrate: 3000000},
		Audio: &store.AudioConfig{Codec: "mp4a.40.2", TargetBitrate: 128000}}
	same := func(f func(c *store.IngestConfig)) bool {
		v, a := *base.Video, *base.Audio
		c := &store.IngestConfig{Video: &v, Audio: &a}
		f(c)
		return sameMedia(base, c)
	}
	if !same(func(*store.IngestConfig) {}) || !same(func(c *store.IngestConfig) { c.Video.TargetBitrate = 4400000 }) {
		t.Fatal("equal media refused")
	}
	for name, f := range map[string]func(*store.IngestConfig){
		"bitrate +60%": func(c *store.IngestConfig) { c.Video.TargetBitrate = 4800000 },
		"size":         func(c *store.IngestConfig) { c.Video.Height = 1080 },
		"frame rate":   func(c *store.IngestConfig) { c.Video.TargetFramerate = 60 },
		"codec":        func(c *store.IngestConfig) { c.Video.Codec = "hvc1.1.L93" },
		"no audio":     func(c *store.IngestConfig) { c.Audio = nil },
	} {
		if same(f) {
			t.Errorf("%s: merged", name)
		}
	}
	if sameMedia(nil, base) {
		t.Error("unknown media merged")
	}
}

// TestJournalReplay writes a journal the way a recording does, tears its last line as a kill
// mid-write would, and reads the state back.
func TestJournalReplay(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir, func(int64) {})
	if err != nil {
		t.Fatal(err)
	}
	m := meta{ID: "rec1", ChannelID: "ch", Bucket: "b", Prefix: "ivs/v1/x", StartedAt: time.Now().UTC()}
	lr := &layout.Rendition{Name: "720p30", Width: 1280, Height: 720}
	c := func(off int64) remux.Chunk { return remux.Chunk{Offset: off, Length: 188, Duration: 2 * time.Second} }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(j.add(entry{Kind: kindStart, Meta: &m}))
	must(j.add(entry{Kind: kindStream, Stream: "st-1"}, entry{Kind: kindRendition, Rendition: lr}))
	must(j.add(entry{Kind: kindChunks, R: "720p30", N: 0, Chunks: []remux.Chunk{c(0)}, Size: 188, MSN: 10}))
	must(j.add(entry{Kind: kindChunks, R: "720p30", N: 0, From: 0, Chunks: []remux.Chunk{c(0), c(188)}, Size: 376, MSN: 11}))
	must(j.add(entry{Kind: kindClose, R: "720p30", N: 0, Size: 376}))
	must(j.add(entry{Kind: kindChunks, R: "720p30", N: 1, Disc: true, Chunks: []remux.Chunk{c(0)}, Size: 188, MSN: 12}))
	must(j.add(entry{Kind: kindThumb, N: 0, Thumbs: &layout.Thumbnails{Sequential: true, Width: 1280, Height: 720}}))
	j.close()
	f, _ := os.OpenFile(journalPath(dir), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"k":"chunks","r":"720p30","n":1,"chunks":[{"off":0,"len":1`)
	f.Close()

	st, err := readJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.meta.ID != "rec1" || len(st.streams) != 1 || len(st.renditions) != 1 || st.thumbN != 1 || st.final {
		t.Fatalf("state %+v", st)
	}
	rs := st.renditions[0]
	if len(rs.lr.Files) != 2 || len(rs.lr.Files[0].Chunks) != 2 || !rs.lr.Files[1].Discontinuity || !rs.open || rs.size != 188 || rs.nextMSN != 13 {
		t.Fatalf("rendition %+v open=%v size=%d next=%d", rs.lr.Files, rs.open, rs.size, rs.nextMSN)
	}
	if _, err := readJournal(t.TempDir()); err == nil {
		t.Fatal("missing journal read")
	}
}
