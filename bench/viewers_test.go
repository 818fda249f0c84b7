package bench

import (
	"testing"

	"glasscast/origin/llhlscheck"
)

// TestAudioRendition: a player follows the separate audio playlist of its variant's group (as
// MediaMTX serves audio), and nothing more when the audio is in the variant's own parts.
func TestAudioRendition(t *testing.T) {
	for _, c := range []struct{ pl, want string }{
		{"#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"other\",NAME=\"x\",DEFAULT=YES,URI=\"wrong.m3u8\"\n" +
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"a1\",URI=\"a1.m3u8\"\n" +
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"a2\",DEFAULT=YES,URI=\"audio2_stream.m3u8?session=s\"\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=2557048,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\nvideo1_stream.m3u8?session=s\n",
			"audio2_stream.m3u8?session=s"},
		{"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2557048,CODECS=\"avc1.64001f,mp4a.40.2\"\nmain.m3u8\n", ""},
	} {
		mv, err := llhlscheck.ParseMultivariant([]byte(c.pl))
		if err != nil {
			t.Fatal(err)
		}
		if got := audioRendition(mv); got != c.want {
			t.Errorf("audio rendition %q, want %q", got, c.want)
		}
	}
}
