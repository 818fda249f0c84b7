package layout

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"glasscast/archive/remux"
)

func TestPrefixAndNames(t *testing.T) {
	at := time.Date(2026, 11, 5, 8, 7, 10, 0, time.FixedZone("CET", 3600))
	if got := Prefix("123456789012", "AbCdef1G2hij", at, "j8Z9O91ndcVs"); got != "ivs/v1/123456789012/AbCdef1G2hij/2026/11/5/7/7/j8Z9O91ndcVs" {
		t.Fatalf("prefix %s (UTC, unpadded)", got)
	}
	for _, c := range []struct {
		h    int
		fps  float64
		want string
	}{{720, 30, "720p30"}, {720, 59.94, "720p60"}, {480, 29.97, "480p30"}, {160, 0, "160p30"}, {0, 0, "audio_only"}} {
		if got := RenditionName(c.h, c.fps); got != c.want {
			t.Errorf("RenditionName(%d, %v) = %s, want %s", c.h, c.fps, got, c.want)
		}
	}
	if SegmentKey("720p30", 3) != "media/hls/720p30/3.ts" || ThumbnailKey(0) != "media/thumbnails/thumb0.jpg" {
		t.Fatal("keys")
	}
}

// sample is a recording of two renditions; the second file of 720p30 follows a reconnect.
func sample() *Recording {
	t0 := time.Date(2026, 11, 5, 8, 7, 10, 0, time.UTC)
	chunks := func(off time.Duration, n int) []remux.Chunk {
		var cs []remux.Chunk
		for i := 0; i < n; i++ {
			cs = append(cs, remux.Chunk{Offset: int64(i) * 188 * 100, Length: 188 * 100, Start: off + time.Duration(i)*2*time.Second,
				Duration: 2 * time.Second, PDT: t0.Add(off + time.Duration(i)*2*time.Second)})
		}
		return cs
	}
	return &Recording{
		ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdef1G2hij", ChannelID: "AbCdef1G2hij", Account: "123456789012",
		StartedAt: t0,
		Renditions: []*Rendition{
			{Name: "720p30", Width: 1280, Height: 720, FrameRate: 30, Codecs: "avc1.64001f,mp4a.40.2", Bandwidth: 2500000,
				Files: []File{{N: 0, Chunks: chunks(0, 5)}, {N: 1, Discontinuity: true, Chunks: chunks(10*time.Second, 3)}}},
			{Name: "360p30", Width: 640, Height: 360, FrameRate: 30, Codecs: "avc1.4d401e,mp4a.40.2", Bandwidth: 800000,
				Files: []File{{N: 0, Chunks: chunks(0, 5)}, {N: 1, Dropped: true, Chunks: chunks(10*time.Second, 3)}}},
		},
		Thumbnails: &Thumbnails{Sequential: true, Latest: true, Width: 1280, Height: 720},
	}
}

func TestPlaylistsParse(t *testing.T) {
	r := sample()
	now := time.Date(2026, 11, 5, 8, 9, 0, 0, time.UTC)
	var mv playlist.Multivariant
	if err := mv.Unmarshal(Master(r, false)); err != nil {
		t.Fatal(err)
	}
	if len(mv.Variants) != 2 || mv.Variants[0].URI != "720p30/playlist.m3u8" || mv.Variants[0].Resolution != "1280x720" ||
		mv.Variants[0].Bandwidth != 2500000 || !strings.Contains(string(Master(r, false)), `DATA-ID="net.live-video.content.id",VALUE="AbCdef1G2hij"`) {
		t.Fatalf("master:\n%s", Master(r, false))
	}
	if !strings.Contains(string(Master(r, true)), "720p30/byte-range-variant.m3u8") {
		t.Fatal("byte-range multivariant points elsewhere")
	}

	live := string(Media(r.Renditions[0], false, now))
	ended := string(Media(r.Renditions[0], true, now))
	var m playlist.Media
	if err := m.Unmarshal([]byte(ended)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(live, "#EXT-X-ENDLIST") || !m.Endlist || len(m.Segments) != 2 || m.TargetDuration != 12 ||
		m.Segments[0].Duration != 10*time.Second || m.Segments[0].URI != "0.ts" || !m.Segments[1].Discontinuity ||
		!strings.Contains(ended, "#EXT-X-TWITCH-TOTAL-SECS:16.000") || !strings.Contains(ended, "#ID3-EQUIV-TDTG:2026-11-05T08:09:00") {
		t.Fatalf("media playlist:\n%s", ended)
	}
	// A dropped file is left out; what follows it is marked discontinuous.
	if got := string(Media(r.Renditions[1], true, now)); strings.Contains(got, "1.ts") {
		t.Fatalf("dropped file listed:\n%s", got)
	}

	var br playlist.Media
	if err := br.Unmarshal(ByteRange(r.Renditions[0], true)); err != nil {
		t.Fatal(err)
	}
	if len(br.Segments) != 8 || *br.Segments[0].ByteRangeStart != 0 || *br.Segments[1].ByteRangeStart != 18800 ||
		*br.Segments[5].ByteRangeStart != 0 || br.Segments[5].URI != "1.ts" || !br.Segments[5].Discontinuity || br.TargetDuration != 2 {
		t.Fatalf("byte-range playlist:\n%s", ByteRange(r.Renditions[0], true))
	}
}

func TestEventFiles(t *testing.T) {
	r := sample()
	var started, ended, failed map[string]any
	end := time.Date(2026, 11, 5, 8, 9, 58, 500, time.UTC)
	for _, c := range []struct {
		b   []byte
		out *map[string]any
	}{{Event(r, StatusStarted, time.Time{}, ""), &started}, {Event(r, StatusEnded, end, ""), &ended},
		{Event(r, StatusEndedWithFailure, end, "InternalServerException: spool full"), &failed}} {
		if err := json.Unmarshal(c.b, c.out); err != nil {
			t.Fatal(err)
		}
	}
	hls := func(m map[string]any) map[string]any { return m["media"].(map[string]any)["hls"].(map[string]any) }
	if started["recording_status"] != "RECORDING_STARTED" || started["recording_ended_at"] != nil || hls(started)["duration_ms"] != nil ||
		started["recording_started_at"] != "2026-11-05T08:07:10Z" || started["version"] != "v1" {
		t.Fatalf("started: %v", started)
	}
	// 720p30 lists 16 s; the longest rendition gives the duration.
	if ended["recording_ended_at"] != "2026-11-05T08:09:58Z" || hls(ended)["duration_ms"] != 16000.0 || ended["recording_status_message"] != nil {
		t.Fatalf("ended: %v", ended)
	}
	if failed["recording_status"] != "RECORDING_ENDED_WITH_FAILURE" || failed["recording_status_message"] != "InternalServerException: spool full" {
		t.Fatalf("failed: %v", failed)
	}
	rends := hls(ended)["renditions"].([]any)
	first := rends[0].(map[string]any)
	if len(rends) != 2 || first["path"] != "720p30" || first["resolution_width"] != 1280.0 || first["byte_range_playlist"] != "byte-range-variant.m3u8" {
		t.Fatalf("renditions: %v", rends)
	}
	media := ended["media"].(map[string]any)
	if media["thumbnails"].(map[string]any)["path"] != "media/thumbnails" || media["latest_thumbnail"].(map[string]any)["path"] != "media/latest_thumbnail/thumb.jpg" {
		t.Fatalf("thumbnails: %v", media)
	}
}
