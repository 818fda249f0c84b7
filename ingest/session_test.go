package ingest

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"golang.org/x/time/rate"

	"glasscast/metadata"
)

func testSession() *Session {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &broadcast{log: log, limiter: rate.NewLimiter(metadata.RatePerSecond, metadata.RatePerSecond)}
	return &Session{b: b, log: log}
}

// TestPendingCuesBounded: cues that arrive before the packager exists are held up to
// maxPendingCues, the oldest dropped first.
func TestPendingCuesBounded(t *testing.T) {
	s := testSession()
	for i := range maxPendingCues + 4 {
		s.addCue("cue-" + strconv.Itoa(i))
	}
	if len(s.pending) != maxPendingCues {
		t.Fatalf("%d cues pending, want %d", len(s.pending), maxPendingCues)
	}
	if first, last := s.pending[0].Text, s.pending[len(s.pending)-1].Text; first != "cue-4" || last != "cue-"+strconv.Itoa(maxPendingCues+3) {
		t.Fatalf("pending cues run from %s to %s; want the newest kept", first, last)
	}
}

// TestInbandRules: in-band cues obey PutMetadata's size and rate rules, and spend the budget
// PutMetadata draws from.
func TestInbandRules(t *testing.T) {
	s := testSession()
	for _, bad := range []string{strings.Repeat("x", metadata.MaxBytes+1), "\xff\xfe"} {
		if s.AddCue(bad) == nil {
			t.Errorf("in-band cue of %d bytes accepted", len(bad))
		}
	}
	if len(s.pending) != 0 {
		t.Fatalf("oversize or invalid in-band metadata was kept: %d cues", len(s.pending))
	}
	for i := range 20 {
		_ = s.AddCue("burst-" + strconv.Itoa(i))
	}
	if n := len(s.pending); n < metadata.RatePerSecond || n > metadata.RatePerSecond+1 {
		t.Fatalf("%d of 20 cues sent at once were kept; want %d", n, metadata.RatePerSecond)
	}
	if s.b.limiter.Allow() {
		t.Fatal("the burst did not spend the channel's PutMetadata budget")
	}
}

// TestIngestConfigSentCodecs: GetStreamSession reports the codecs the publisher sends, not
// those the ingest converted them to (WHIP's VP8 and Opus), and describes H.264 that passes
// through from its parameter sets.
func TestIngestConfigSentCodecs(t *testing.T) {
	// x264's SPS for 1280x720, High profile, level 3.1.
	sps := []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60}
	video := &mp4codecs.H264{SPS: sps, PPS: []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}}
	audio := &mp4codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}}

	through := ingestConfig(video, audio, Encoder{Name: "ffmpeg"})
	if v, a := through.Video, through.Audio; v.Codec != "avc1.64001F" || v.Profile != "High" || v.Level != "3.1" || v.Width != 1280 || v.Height != 720 || a.Codec != "mp4a.40.2" {
		t.Fatalf("passed through: video %+v audio %+v", v, a)
	}
	sent := ingestConfig(video, audio, Encoder{Name: "WHIP", SentVideo: "vp8", SentAudio: "opus"})
	if v, a := sent.Video, sent.Audio; v.Codec != "vp8" || v.Profile != "" || v.Level != "" || v.Width != 1280 || a.Codec != "opus" || a.SampleRate != 48000 {
		t.Fatalf("transcoded by the ingest: video %+v audio %+v", v, a)
	}
}
