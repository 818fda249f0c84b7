package bench

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"

	"glasscast/origin/llhlscheck"
)

// BenchmarkViewerPlaylistParse is the load client's own cost per blocking reload: parsing a
// 6-segment LL-HLS media playlist of 0.2 s parts. It runs on the cores of the server it
// measures, so its cost shows up as part delay.
func BenchmarkViewerPlaylistParse(b *testing.B) {
	pl := benchPlaylist()
	b.ReportAllocs()
	var lp livePlaylist
	for i := 0; i < b.N; i++ {
		if err := scanMedia(pl, &lp); err != nil || len(lp.parts) != 30 {
			b.Fatal(err, len(lp.parts))
		}
	}
}

// BenchmarkConformancePlaylistParse is the same playlist read by llhlscheck.ParseMedia, which
// the load client used before scanMedia: the baseline of the ratio.
func BenchmarkConformancePlaylistParse(b *testing.B) {
	pl := benchPlaylist()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := llhlscheck.ParseMedia(pl); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPlaylist() []byte {
	var pl bytes.Buffer
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,PART-HOLD-BACK=0.612\n#EXT-X-PART-INF:PART-TARGET=0.204\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-MAP:URI=\"init100.mp4?vs=aapxzlmwcmtn960x\"\n")
	for s := 100; s < 106; s++ {
		pl.WriteString("#EXT-X-PROGRAM-DATE-TIME:2026-12-03T19:58:08.496Z\n")
		for p := 0; p < 5; p++ {
			fmt.Fprintf(&pl, "#EXT-X-PART:DURATION=0.2,URI=\"part%d.%d.m4s?vs=aapxzlmwcmtn960x\"\n", s, p)
		}
		fmt.Fprintf(&pl, "#EXTINF:1,\nseg%d.m4s?vs=aapxzlmwcmtn960x\n", s)
	}
	pl.WriteString("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part106.0.m4s?vs=aapxzlmwcmtn960x\"\n")
	return pl.Bytes()
}

// BenchmarkViewerGunzip is the load client's cost per gzipped playlist, through its pooled
// fast-path reader ("pooled"), and through fasthttp's AppendGunzipBytes, which the client used
// before ("fasthttp"): the baseline of the ratio.
func BenchmarkViewerGunzip(b *testing.B) {
	var g gunzipper
	for _, c := range []struct {
		name   string
		gunzip func(dst, src []byte) ([]byte, error)
	}{{"pooled", g.appendGunzip}, {"fasthttp", fasthttp.AppendGunzipBytes}} {
		b.Run(c.name, func(b *testing.B) {
			gz, pl := gzipPlaylist(b)
			var out []byte
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var err error
				if out, err = c.gunzip(out[:0], gz); err != nil || !bytes.Equal(out, pl) {
					b.Fatal(err, len(out))
				}
			}
		})
	}
}

// gzipPlaylist is benchPlaylist gzipped at the speed the edge uses.
func gzipPlaylist(b *testing.B) (gz, pl []byte) {
	pl = benchPlaylist()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := w.Write(pl); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), pl
}
