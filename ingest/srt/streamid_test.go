package srt

import "testing"

// TestStreamKey: the stream key as the streamid, plain or in SRT's access-control form, whose
// mode if given must be publish.
func TestStreamKey(t *testing.T) {
	for _, c := range []struct {
		in, key string
		ok      bool
	}{
		{"sk_us-east-1_abc", "sk_us-east-1_abc", true},
		{"#!::r=sk_us-east-1_abc,m=publish", "sk_us-east-1_abc", true},
		{"#!::m=publish,r=sk_us-east-1_abc", "sk_us-east-1_abc", true},
		{"#!::u=alice,r=sk_us-east-1_abc", "sk_us-east-1_abc", true},
		{"#!::r=sk_us-east-1_abc,m=request", "", false},
		{"#!::m=publish", "", false},
		{"#!::", "", false},
		{"", "", false},
	} {
		key, err := streamKey(c.in)
		if (err == nil) != c.ok || key != c.key {
			t.Errorf("streamKey(%q) = %q, %v; want %q, ok=%v", c.in, key, err, c.key, c.ok)
		}
	}
}
