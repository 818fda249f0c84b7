package source

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"glasscast/loopback"
	"glasscast/origin"
	"glasscast/origin/origintest"
)

// TestFollowOrigin reads a real origin fed by a synthetic publisher, in process (loopback) and
// over HTTP: every segment in order with its init, blocking until new ones complete, a new
// init after a reconnect, and io.EOF once the broadcast ends.
func TestFollowOrigin(t *testing.T) {
	for _, remote := range []bool{false, true} {
		name := "loopback"
		if remote {
			name = "http"
		}
		t.Run(name, func(t *testing.T) {
			org := origin.New(origin.Config{Region: "us-east-1", Account: "000000000000"})
			defer org.Close()
			o := &Origin{Client: &http.Client{Transport: &loopback.Transport{Handler: org}}, BaseURL: "http://origin", Region: "us-east-1", Account: "000000000000"}
			if remote {
				srv := httptest.NewServer(org)
				defer srv.Close()
				o = &Origin{Client: srv.Client(), BaseURL: srv.URL, Region: "us-east-1", Account: "000000000000"}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			pub := origintest.New(org, origintest.Config{ChannelID: "ch1", Backfill: 3, FirstMSN: 100, CueEvery: 2})
			if err := pub.Open(ctx); err != nil {
				t.Fatal(err)
			}
			vs, err := o.Variants(ctx, "ch1")
			if err != nil || len(vs) != 2 || vs[0].Rendition != "720p" || vs[0].Height == 0 || vs[0].Codecs == "" {
				t.Fatalf("variants %+v %v", vs, err)
			}
			f := o.Follow("ch1", "720p", 0)
			var got []*Segment
			next := func() *Segment {
				t.Helper()
				s, err := f.Next(ctx)
				if err != nil {
					t.Fatalf("segment %d: %v", len(got), err)
				}
				got = append(got, s)
				return s
			}
			for range 3 {
				next()
			}
			// The fourth blocks until the publisher completes it.
			done := make(chan *Segment)
			go func() {
				s, _ := f.Next(ctx)
				done <- s
			}()
			select {
			case <-done:
				t.Fatal("a segment was returned before it was complete")
			case <-time.After(300 * time.Millisecond):
			}
			for range pub.PartsPerSegment() {
				if err := pub.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s4 := <-done
			if s4 == nil || s4.MSN != got[2].MSN+1 {
				t.Fatalf("blocked segment %+v", s4)
			}
			got = append(got, s4)
			if err := pub.Reconnect(ctx, true); err != nil {
				t.Fatal(err)
			}
			for range pub.PartsPerSegment() {
				if err := pub.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s5 := next()
			if !s5.Discontinuity || s5.InitURI == got[0].InitURI || len(s5.Init) == 0 || s5.PDT.IsZero() || s5.Duration != time.Second {
				t.Fatalf("segment after a reconnect: disc=%v init %s (was %s)", s5.Discontinuity, s5.InitURI, got[0].InitURI)
			}
			for i := 1; i < len(got); i++ {
				if got[i].MSN != got[i-1].MSN+1 || len(got[i].Data) == 0 {
					t.Fatalf("segments out of order: %d after %d", got[i].MSN, got[i-1].MSN)
				}
			}
			if err := pub.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Next(ctx); !errors.Is(err, io.EOF) {
				t.Fatalf("after the end: %v", err)
			}
			if _, err := o.Follow("nope", "720p", 0).Next(ctx); !errors.Is(err, ErrOffline) {
				t.Fatalf("offline channel: %v", err)
			}
		})
	}
}

// TestFollowGap starts from a segment the origin no longer holds.
func TestFollowGap(t *testing.T) {
	org := origin.New(origin.Config{})
	defer org.Close()
	ctx := t.Context()
	pub := origintest.New(org, origintest.Config{ChannelID: "ch1", Backfill: 20})
	if err := pub.Open(ctx); err != nil {
		t.Fatal(err)
	}
	o := &Origin{Client: &http.Client{Transport: &loopback.Transport{Handler: org}}, BaseURL: "http://origin", Region: "r", Account: "1"}
	f := o.Follow("ch1", "360p", 1)
	_, err := f.Next(ctx)
	var gap *Gap
	if !errors.As(err, &gap) || gap.From != 1 || gap.To < 8 {
		t.Fatalf("want a gap from 1, got %v", err)
	}
	if s, err := f.Next(ctx); err != nil || s.MSN != gap.To {
		t.Fatalf("after the gap: %v %v", s, err)
	}
}

func TestParseMedia(t *testing.T) {
	pl := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"init3.mp4\"\n" +
		"#EXT-X-PROGRAM-DATE-TIME:2026-11-05T08:07:10.000Z\n#EXTINF:2.000,\nseg7.m4s\n" +
		"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init4.mp4\",BYTERANGE=\"10@0\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-05T08:07:12.000Z\n#EXTINF:1.5,\nseg8.m4s\n" +
		"#EXT-X-PART:DURATION=0.2,URI=\"part9.0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.1.m4s\"\n#EXT-X-PREFETCH:seg9.m4s\n"
	p, err := ParseMedia([]byte(pl))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Segments) != 2 || p.Ended || p.Segments[0].MSN != 7 || p.Segments[1].MSN != 8 || p.Segments[0].InitURI != "init3.mp4" ||
		p.Segments[1].InitURI != "init4.mp4" || !p.Segments[1].Discontinuity || p.Segments[0].Discontinuity ||
		p.Segments[1].Duration != 1500*time.Millisecond || p.Segments[1].PDT.Second() != 12 {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{"", "nope", "#EXTM3U\nseg1.m4s\n", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n", "#EXTM3U\n#EXTINF:-1,\nx\n"} {
		if _, err := ParseMedia([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestResolveStaysOnOrigin(t *testing.T) {
	o := &Origin{BaseURL: "http://origin", Region: "r", Account: "1"}
	f := o.Follow("ch", "720p", 0)
	for _, ref := range []string{"http://evil/x", "//evil/x"} {
		if _, err := f.resolve(ref); err == nil {
			t.Errorf("%q resolved off the origin", ref)
		}
	}
	if u, err := f.resolve("seg1.m4s"); err != nil || !strings.HasSuffix(u, "/r.1.channel.ch/720p/seg1.m4s") {
		t.Errorf("relative URI: %s %v", u, err)
	}
}

// FuzzParseMedia feeds arbitrary bytes to the media playlist parser: an origin in another
// process is untrusted input.
func FuzzParseMedia(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"init3.mp4\"\n#EXTINF:2.000,\nseg7.m4s\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-MAP:URI=\"a\n#EXTINF:1e308,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseMedia(b)
		if err == nil {
			for i := 1; i < len(p.Segments); i++ {
				if p.Segments[i].MSN != p.Segments[i-1].MSN+1 {
					t.Fatal("MSNs not consecutive")
				}
			}
		}
	})
}

// FuzzParseMultivariant feeds arbitrary bytes to the multivariant parser.
func FuzzParseMultivariant(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\nus-east-1.0.channel.x/720p/index.m3u8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := ParseMultivariant(b)
		if err == nil {
			for _, v := range vs {
				if v.Rendition == "" || v.Rendition == ".." || strings.Contains(v.Rendition, "/") {
					t.Fatalf("unsafe rendition %q", v.Rendition)
				}
			}
		}
	})
}
