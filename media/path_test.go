package media_test

import (
	"strings"
	"testing"

	"glasscast/media"
)

func TestParsePlaybackPath(t *testing.T) {
	const name = "us-west-2.123456789012.channel.AbCd1234"
	for _, c := range []struct {
		path string
		want media.PlaybackTarget
		ok   bool
	}{
		{"/api/video/v1/" + name + ".m3u8", media.PlaybackTarget{Region: "us-west-2", Account: "123456789012", ChannelID: "AbCd1234"}, true},
		{"/api/video/v1/" + name + "/720p30/part12.3.m4s", media.PlaybackTarget{Region: "us-west-2", Account: "123456789012", ChannelID: "AbCd1234", Rendition: "720p30", File: "part12.3.m4s"}, true},
		{"/api/video/v1/" + name + "/720p30/index.m3u8", media.PlaybackTarget{Region: "us-west-2", Account: "123456789012", ChannelID: "AbCd1234", Rendition: "720p30", File: "index.m3u8"}, true},
		{"/api/video/v1/" + name + "/720p30", media.PlaybackTarget{}, false},
		{"/api/video/v1/" + name + "/720p30/a/b.m4s", media.PlaybackTarget{}, false},
		{"/api/video/v1/" + name + "/../index.m3u8", media.PlaybackTarget{}, false},
		{"/api/video/v1/" + name + "/720p30/..", media.PlaybackTarget{}, false},
		{"/api/video/v1/" + name + "//part1.0.m4s", media.PlaybackTarget{}, false},
		{"/api/video/v1/" + name + "/720p30/", media.PlaybackTarget{}, false},
		{"/api/video/v1/us-west-2.123456789012.channel.AbCd1234.x.m3u8", media.PlaybackTarget{}, false},
		{"/api/video/v1/us-west-2.123456789012.stream.AbCd1234.m3u8", media.PlaybackTarget{}, false},
		{"/api/video/v1/.123456789012.channel.AbCd1234.m3u8", media.PlaybackTarget{}, false},
		{"/api/video/v1/us-west-2.123456789012.channel..m3u8", media.PlaybackTarget{}, false},
		{"/api/video/v1/us-west-2.123456789012.channel.a%2fb.m3u8", media.PlaybackTarget{}, false},
		{"/api/video/v2/" + name + ".m3u8", media.PlaybackTarget{}, false},
		{"", media.PlaybackTarget{}, false},
	} {
		got, ok := media.ParsePlaybackPath(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("%q: %+v %v, want %+v %v", c.path, got, ok, c.want, c.ok)
		}
	}
}

func BenchmarkParsePlaybackPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := media.ParsePlaybackPath("/api/video/v1/us-west-2.123456789012.channel.AbCd1234/720p30/part12.3.m4s"); !ok {
			b.Fatal("not parsed")
		}
	}
}

// FuzzParsePlaybackPath checks the parser against its definition written with strings.Split,
// and that whatever it accepts is made of safe elements that rebuild the path.
func FuzzParsePlaybackPath(f *testing.F) {
	for _, s := range []string{
		"/api/video/v1/us-west-2.123456789012.channel.AbCd1234.m3u8",
		"/api/video/v1/us-west-2.123456789012.channel.AbCd1234/720p30/part12.3.m4s",
		"/api/video/v1/a.b.channel.c/../x", "/api/video/v1/a.b.channel.c//x", "/api/video/v1/a..channel.c.m3u8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := media.ParsePlaybackPath(p)
		want, wantOK := splitDefinition(p)
		if ok != wantOK || got != want {
			t.Fatalf("%q: %+v %v, by definition %+v %v", p, got, ok, want, wantOK)
		}
		if !ok {
			return
		}
		rebuilt := media.MultivariantPath(got.Region, got.Account, got.ChannelID)
		if got.Rendition != "" {
			rebuilt = strings.TrimSuffix(rebuilt, ".m3u8") + "/" + got.Rendition + "/" + got.File
		}
		if rebuilt != p {
			t.Fatalf("%q parsed as %+v, which names %q", p, got, rebuilt)
		}
	})
}

// splitDefinition is ParsePlaybackPath as first written, with strings.Split.
func splitDefinition(p string) (media.PlaybackTarget, bool) {
	rest, ok := strings.CutPrefix(p, media.PlaybackPrefix)
	if !ok {
		return media.PlaybackTarget{}, false
	}
	var t media.PlaybackTarget
	name := rest
	if stem, ok := strings.CutSuffix(rest, ".m3u8"); ok && !strings.Contains(stem, "/") {
		name = stem
	} else {
		parts := strings.Split(rest, "/")
		if len(parts) != 3 || !safe(parts[1]) || !safe(parts[2]) {
			return media.PlaybackTarget{}, false
		}
		name, t.Rendition, t.File = parts[0], parts[1], parts[2]
	}
	f := strings.Split(name, ".")
	if len(f) != 4 || f[2] != "channel" || f[0] == "" || f[1] == "" || !safe(f[3]) {
		return media.PlaybackTarget{}, false
	}
	t.Region, t.Account, t.ChannelID = f[0], f[1], f[3]
	return t, true
}

func safe(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
