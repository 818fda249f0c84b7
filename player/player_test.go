package player

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(h *Handler, target string) (int, string, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Header().Get("Content-Type"), string(b)
}

func TestPages(t *testing.T) {
	h := New(Config{Region: "us-east-1", Account: "000000000000"})
	code, ctype, body := serve(h, "/player/abcDEF123456")
	if code != 200 || !strings.HasPrefix(ctype, "text/html") ||
		!strings.Contains(body, `value="/api/video/v1/us-east-1.000000000000.channel.abcDEF123456.m3u8"`) {
		t.Fatalf("channel page: %d %s\n%s", code, ctype, body)
	}
	// Any playback URL, with a token; both are escaped into the page, never executed.
	code, _, body = serve(h, `/player/?url=https://cdn.example/x.m3u8&token="><script>alert(1)</script>`)
	if code != 200 || !strings.Contains(body, `value="https://cdn.example/x.m3u8"`) || strings.Contains(body, "<script>alert") {
		t.Fatalf("URL page: %d\n%s", code, body)
	}
	// The Go live page publishes to the WHIP endpoint.
	code, _, body = serve(h, "/player/go-live")
	if code != 200 || !strings.Contains(body, `data-endpoint="/whip"`) || !strings.Contains(body, "golive.js") {
		t.Fatalf("go-live page: %d\n%s", code, body)
	}
	for _, asset := range []string{"/player/assets/player.js", "/player/assets/vendor/hls.min.js", "/player/assets/player.css", "/player/assets/golive.js"} {
		if code, _, body := serve(h, asset); code != 200 || len(body) < 100 {
			t.Fatalf("%s: %d, %d bytes", asset, code, len(body))
		}
	}
	for _, bad := range []string{"/player/../etc/passwd", "/player/a.b", "/player/assets/../player.go", "/player/x%2Fy"} {
		if code, _, body := serve(h, bad); code == 200 && strings.Contains(body, "package player") {
			t.Fatalf("%s served source", bad)
		} else if code == 200 && !strings.HasPrefix(bad, "/player/assets/") {
			t.Fatalf("%s: %d", bad, code)
		}
	}
}
