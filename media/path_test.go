package media_test

import (
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
