package auth

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestViewerAddr(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	viewer := netip.MustParseAddr("203.0.113.7")
	h := SignViewerAddr(key, viewer, now)
	if got, ok := VerifyViewerAddr(key, h, now.Add(time.Second)); !ok || got != viewer {
		t.Fatalf("a fresh assertion: got %v %v, want %v", got, ok, viewer)
	}
	for name, c := range map[string]struct {
		header string
		key    []byte
		at     time.Time
	}{
		"another key":          {h, []byte("another key of thirty-two bytes!"), now},
		"no key":               {h, nil, now},
		"an old one":           {h, key, now.Add(time.Minute)},
		"another address":      {strings.Replace(h, "203.0.113.7", "198.51.100.1", 1), key, now},
		"a later time":         {strings.Replace(h, "|1800000000|", "|1800000030|", 1), key, now},
		"garbage":              {"not|an|assertion", key, now},
		"empty":                {"", key, now},
		"no mac":               {"203.0.113.7|1800000000", key, now},
		"an address that lies": {SignViewerAddr(key, netip.Addr{}, now), key, now},
	} {
		if got, ok := VerifyViewerAddr(c.key, c.header, c.at); ok {
			t.Errorf("%s: accepted as %v", name, got)
		}
	}
}
