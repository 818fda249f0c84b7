package bench

import (
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

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

// TestGetFollowsRedirectAndGunzips: the client follows a redirect (a playback director's) and
// resolves against the final URL, and reads a gzip-encoded playlist as a browser does.
func TestGetFollowsRedirectAndGunzips(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a/index.m3u8", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/b/index.m3u8?x=1", http.StatusFound)
	})
	mux.HandleFunc("/b/index.m3u8", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Error("no Accept-Encoding: gzip")
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write([]byte("#EXTM3U\n"))
		_ = zw.Close()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	v := &viewer{client: &fasthttp.Client{}, st: &stats{errors: map[string]int64{}}}
	body, final, err := v.getFinal(context.Background(), srv.URL+"/a/index.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "#EXTM3U\n" || final != srv.URL+"/b/index.m3u8?x=1" || v.st.requests.Load() != 2 {
		t.Fatalf("body %q from %v after %d requests", body, final, v.st.requests.Load())
	}
}
