package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestID3Golden(t *testing.T) {
	got, err := ID3("hi")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'I', 'D', '3', 4, 0, 0, 0, 0, 0, 14, // header: v2.4.0, no flags, 14 bytes follow
		'T', 'X', 'X', 'X', 0, 0, 0, 4, 0, 0, // frame header: 4 bytes of data, no flags
		3, 0, 'h', 'i', // UTF-8, empty description, value
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ID3(hi) =\n% x\nwant\n% x", got, want)
	}
}

func TestID3SynchsafeSizes(t *testing.T) {
	for _, n := range []int{0, 1, 117, 118, 200, 1024, 16384, 1 << 21} {
		text := strings.Repeat("x", n)
		tag, err := ID3(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range tag[6:10] {
			if b&0x80 != 0 {
				t.Fatalf("n=%d: tag size byte %#x has its top bit set", n, b)
			}
		}
		for _, b := range tag[14:18] {
			if b&0x80 != 0 {
				t.Fatalf("n=%d: frame size byte %#x has its top bit set", n, b)
			}
		}
		size, _ := synchsafe(tag[6:10])
		if int(size) != len(tag)-10 {
			t.Fatalf("n=%d: tag size %d, want %d", n, size, len(tag)-10)
		}
		frame, _ := synchsafe(tag[14:18])
		if int(frame) != n+2 {
			t.Fatalf("n=%d: frame size %d, want %d", n, frame, n+2)
		}
		back, err := ID3Text(tag)
		if err != nil || back != text {
			t.Fatalf("n=%d: round trip = %d bytes, %v", n, len(back), err)
		}
	}
}

func TestID3RoundTrip(t *testing.T) {
	for _, text := range []string{"", "hello", `{"question":"who?","answers":["a","b"]}`, "héllo wörld ✓ 🎬", "a\x00b"} {
		tag, err := ID3(text)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ID3Text(tag)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		// A NUL inside the value survives; only trailing ones are padding.
		if got != text {
			t.Fatalf("round trip %q = %q", text, got)
		}
	}
}

// frameV23 builds an ID3v2.3 tag (plain frame sizes) with one frame.
func tagV23(id string, data []byte, extra []byte) []byte {
	body := append([]byte(id), 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(body[4:], uint32(len(data)))
	body = append(body, data...)
	body = append(extra, body...)
	tag := append([]byte{'I', 'D', '3', 3, 0, 0}, appendSynchsafe(nil, uint32(len(body)))...)
	return append(tag, body...)
}

func TestID3TextOtherWriters(t *testing.T) {
	utf16le := []byte{1, 'd', 0, 0, 0, 0xff, 0xfe, 'h', 0, 'i', 0, 0x3a, 0xd8, 0x2c, 0xdf} // description "d", value "hi" + a surrogate pair
	cases := []struct {
		name string
		tag  []byte
		want string
		err  bool
	}{
		{"v2.3 latin1", tagV23("TXXX", []byte{0, 'k', 0, 'c', 'a', 'f', 0xe9}, nil), "café", false},
		{"v2.3 utf16 bom", tagV23("TXXX", utf16le, nil), "hi\U0001eb2c", false},
		{"v2.3 utf16be", tagV23("TXXX", []byte{2, 0, 0, 0, 'o', 0, 'k'}, nil), "ok", false},
		{"other frame first", append(tagV23("TIT2", []byte{3, 't'}, nil)[:0:0], tagV23("TIT2", []byte{3, 't'}, nil)...), "", true},
		{"bad encoding", tagV23("TXXX", []byte{9, 0, 'x'}, nil), "", true},
		{"unterminated", tagV23("TXXX", []byte{3, 'x'}, nil), "", true},
		{"not id3", []byte("ID4\x04\x00\x00\x00\x00\x00\x00"), "", true},
		{"v2.2", []byte("ID3\x02\x00\x00\x00\x00\x00\x00"), "", true},
		{"truncated", []byte("ID3\x04\x00\x00\x00\x00\x01\x00"), "", true},
	}
	for _, c := range cases {
		got, err := ID3Text(c.tag)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s: ID3Text = %q, %v; want %q, err %v", c.name, got, err, c.want, c.err)
		}
	}
	if _, err := ID3Text(tagV23("TIT2", []byte{3, 't'}, nil)); !errors.Is(err, ErrNoText) {
		t.Errorf("tag without TXXX: %v, want ErrNoText", err)
	}
}

func TestID3TextV24Features(t *testing.T) {
	// Extended header (6 bytes, synchsafe size counting itself), then a TXXX frame with a data
	// length indicator and per-frame unsynchronisation of an 0xFF byte.
	ext := []byte{0, 0, 0, 6, 1, 0}
	data := []byte{0, 0, 0, 6, 0, 0, 'a', 0xff, 0x00, 'b'} // latin1 "a\xffb" after resync
	frame := append([]byte("TXXX"), appendSynchsafe(nil, uint32(len(data)))...)
	frame = append(frame, 0, 0x03)
	frame = append(frame, data...)
	body := append(ext, frame...)
	tag := append([]byte{'I', 'D', '3', 4, 0, 0x40}, appendSynchsafe(nil, uint32(len(body)))...)
	tag = append(tag, body...)
	got, err := ID3Text(tag)
	if err != nil || got != "a\u00ffb" {
		t.Fatalf("ID3Text = %q, %v", got, err)
	}
}

func TestAppendEmsgLayout(t *testing.T) {
	e := Event{ID: 7, Timescale: 90000, PresentationTime: 1<<33 + 5, Text: "hi"}
	b, err := AppendEmsg([]byte("prefix"), e)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatal("prefix overwritten")
	}
	b = b[6:]
	tag, _ := ID3("hi")

	// Version 1 field order (ISO/IEC 23009-1 5.10.3.3.3): numbers first, then strings.
	v1 := []byte{0, 0, 0, 0, 'e', 'm', 's', 'g', 1, 0, 0, 0}
	v1 = binary.BigEndian.AppendUint32(v1, 90000)
	v1 = binary.BigEndian.AppendUint64(v1, 1<<33+5)
	v1 = binary.BigEndian.AppendUint32(v1, 0xFFFFFFFF)
	v1 = binary.BigEndian.AppendUint32(v1, 7)
	v1 = append(v1, SchemeAOM+"\x00"+Value+"\x00"...)
	v1 = append(v1, tag...)
	binary.BigEndian.PutUint32(v1, uint32(len(v1)))

	// Version 0: strings first, then a 32-bit delta.
	v0 := []byte{0, 0, 0, 0, 'e', 'm', 's', 'g', 0, 0, 0, 0}
	v0 = append(v0, SchemeTwitch+"\x00"+Value+"\x00"...)
	v0 = binary.BigEndian.AppendUint32(v0, 90000)
	v0 = binary.BigEndian.AppendUint32(v0, 0)
	v0 = binary.BigEndian.AppendUint32(v0, 0xFFFFFFFF)
	v0 = binary.BigEndian.AppendUint32(v0, 7)
	v0 = append(v0, tag...)
	binary.BigEndian.PutUint32(v0, uint32(len(v0)))

	if want := append(v1, v0...); !bytes.Equal(b, want) {
		t.Fatalf("AppendEmsg =\n% x\nwant\n% x", b, want)
	}
}

func TestParseEmsgRoundTrip(t *testing.T) {
	var data []byte
	var err error
	data, err = AppendEmsg(data, Event{ID: 1, Timescale: 90000, PresentationTime: 900, Text: "first"})
	if err != nil {
		t.Fatal(err)
	}
	data, err = AppendEmsg(data, Event{ID: 2, Timescale: 1000, PresentationTime: 10, Text: "sécond"})
	if err != nil {
		t.Fatal(err)
	}
	// Boxes that are skipped: an empty moof and an mdat with bytes that look like a box.
	data = append(data, 0, 0, 0, 8, 'm', 'o', 'o', 'f')
	data = append(data, 0, 0, 0, 24, 'm', 'd', 'a', 't', 0, 0, 0, 16, 'e', 'm', 's', 'g', 1, 2, 3, 4, 5, 6, 7, 8)
	third, _ := AppendEmsg(nil, Event{ID: 3, Timescale: 90000, PresentationTime: 0, Text: ""})
	data = append(data, third...)

	msgs, err := ParseEmsg(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 6 {
		t.Fatalf("got %d messages, want 6", len(msgs))
	}
	want := []struct {
		version uint8
		scheme  string
		id      uint32
		pt      uint64
		text    string
	}{
		{1, SchemeAOM, 1, 900, "first"}, {0, SchemeTwitch, 1, 0, "first"},
		{1, SchemeAOM, 2, 10, "sécond"}, {0, SchemeTwitch, 2, 0, "sécond"},
		{1, SchemeAOM, 3, 0, ""}, {0, SchemeTwitch, 3, 0, ""},
	}
	for i, w := range want {
		m := msgs[i]
		if m.Version != w.version || m.SchemeIDURI != w.scheme || m.ID != w.id || m.PresentationTime != w.pt ||
			m.Text != w.text || m.Value != Value || m.EventDuration != DurationUnknown || m.PresentationTimeDelta != 0 {
			t.Errorf("message %d = %+v, want %+v", i, m, w)
		}
	}
}

func TestParseEmsgErrors(t *testing.T) {
	good, _ := AppendEmsg(nil, Event{ID: 1, Timescale: 90000, Text: "x"})
	cases := map[string][]byte{
		"truncated box":     good[:len(good)-1],
		"short header":      {0, 0, 0},
		"size below header": {0, 0, 0, 4, 'f', 'r', 'e', 'e'},
		"bad id3":           func() []byte { b := bytes.Clone(good); b[bytes.Index(b, []byte("ID3\x04"))] = 'X'; return b }(),
	}
	for name, data := range cases {
		if _, err := ParseEmsg(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if msgs, err := ParseEmsg(nil); err != nil || len(msgs) != 0 {
		t.Errorf("empty input: %v, %v", msgs, err)
	}
}

func TestAppendEmsgZeroTimescale(t *testing.T) {
	if _, err := AppendEmsg(nil, Event{Text: "x"}); err == nil {
		t.Fatal("no error for zero timescale")
	}
}

func FuzzID3Text(f *testing.F) {
	tag, _ := ID3("seed")
	f.Add(tag)
	f.Add(tagV23("TXXX", []byte{1, 0, 0, 0xff, 0xfe, 'a', 0}, nil))
	f.Add(tagV23("TXXX", []byte{0, 'k', 0, 'v'}, []byte{0, 0, 0, 6, 0, 0, 0, 0, 0, 0}))
	f.Add([]byte("ID3\x04\x00\x40\x00\x00\x00\x04\x00\x00\x00\x05"))
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := ID3Text(data)
		if err != nil && text != "" {
			t.Fatalf("text %q with error %v", text, err)
		}
	})
}

func FuzzParseEmsg(f *testing.F) {
	seed, _ := AppendEmsg(nil, Event{ID: 9, Timescale: 90000, PresentationTime: 12345, Text: "seed"})
	f.Add(seed)
	f.Add(append(bytes.Clone(seed), 0, 0, 0, 8, 'm', 'o', 'o', 'f'))
	f.Add([]byte{0, 0, 0, 1, 'e', 'm', 's', 'g', 0, 0, 0, 0, 0, 0, 0, 20})
	f.Add([]byte{0, 0, 0, 12, 'e', 'm', 's', 'g', 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := ParseEmsg(data)
		if err != nil {
			return
		}
		// Whatever parsed must survive a round trip of its text.
		for _, m := range msgs {
			if m.Timescale == 0 || m.Version != 1 || m.SchemeIDURI != SchemeAOM {
				continue
			}
			b, err := AppendEmsg(nil, Event{ID: m.ID, Timescale: m.Timescale, PresentationTime: m.PresentationTime, Text: m.Text})
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseEmsg(b)
			if err != nil || len(back) != 2 || back[0].Text != m.Text {
				t.Fatalf("round trip of %q: %v, %+v", m.Text, err, back)
			}
		}
	})
}
