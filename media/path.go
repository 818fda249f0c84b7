package media

import "strings"

// PlaybackPrefix starts every playback path, as in IVS playback URLs.
const PlaybackPrefix = "/api/video/v1/"

// PlaybackName is the stem IVS gives a channel's playlists: "<region>.<account>.channel.<id>".
func PlaybackName(region, account, channelID string) string {
	return region + "." + account + ".channel." + channelID
}

// MultivariantPath is the path of a channel's multivariant playlist, the playback URL's path.
func MultivariantPath(region, account, channelID string) string {
	return PlaybackPrefix + PlaybackName(region, account, channelID) + ".m3u8"
}

// PlaybackTarget is what a playback path names.
type PlaybackTarget struct {
	Region, Account, ChannelID string
	// Rendition and File are empty for the multivariant playlist.
	Rendition string
	File      string
}

// ParsePlaybackPath splits a playback path. It accepts only the two shapes Glasscast serves:
// "<prefix><name>.m3u8" and "<prefix><name>/<rendition>/<file>", with no empty, dot or
// slash-bearing elements, so a parsed path can never escape its channel.
func ParsePlaybackPath(p string) (PlaybackTarget, bool) {
	rest, ok := strings.CutPrefix(p, PlaybackPrefix)
	if !ok {
		return PlaybackTarget{}, false
	}
	var t PlaybackTarget
	name := rest
	if stem, ok := strings.CutSuffix(rest, ".m3u8"); ok && !strings.Contains(stem, "/") {
		name = stem
	} else {
		var parts [3]string
		if !splitExactly(rest, '/', parts[:]) {
			return PlaybackTarget{}, false
		}
		name, t.Rendition, t.File = parts[0], parts[1], parts[2]
		if !safeElement(t.Rendition) || !safeElement(t.File) {
			return PlaybackTarget{}, false
		}
	}
	// region.account.channel.id: the region holds dashes but no dots.
	var f [4]string
	if !splitExactly(name, '.', f[:]) || f[2] != "channel" || f[0] == "" || f[1] == "" || !safeElement(f[3]) {
		return PlaybackTarget{}, false
	}
	t.Region, t.Account, t.ChannelID = f[0], f[1], f[3]
	return t, true
}

// splitExactly splits s around sep into exactly len(out) elements; it reports false when s has
// more or fewer. Every playback request parses its path: this allocates nothing, where
// strings.Split allocated twice.
func splitExactly(s string, sep byte, out []string) bool {
	for i := range out[:len(out)-1] {
		j := strings.IndexByte(s, sep)
		if j < 0 {
			return false
		}
		out[i], s = s[:j], s[j+1:]
	}
	out[len(out)-1] = s
	return strings.IndexByte(s, sep) < 0
}

func safeElement(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}
