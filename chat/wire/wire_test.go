package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFrames(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	m := NewMessage("r", "hi", nil, "u", nil, now)
	b := string(Encode(m))
	want := `{"Type":"MESSAGE","Id":"` + m.Id + `","RequestId":"r","Attributes":null,"Content":"hi","SendTime":"2026-01-02T02:04:05.000000006Z","Sender":{"UserId":"u","Attributes":{}}}`
	if b != want {
		t.Fatalf("message\n%s\nwant\n%s", b, want)
	}
	d := NewDeleteEvent("", "abcdefABCDEF", "", now)
	if d.Attributes["MessageID"] != "abcdefABCDEF" || d.Attributes["MessageId"] != "abcdefABCDEF" || d.EventName != EventDeleteMessage {
		t.Fatalf("delete %+v", d)
	}
	e := NewError("q", 429, "slow down")
	if got := string(Encode(e)); !strings.Contains(got, `"ErrorCode":429`) || !strings.Contains(got, `"RequestId":"q"`) {
		t.Fatalf("error %s", got)
	}
	if a, b := NewID(), NewID(); a == b || len(a) != 12 {
		t.Fatalf("ids %q %q", a, b)
	}
}

// FuzzParseRequest feeds arbitrary client frames to the parser: it must not panic, and what it
// accepts must survive a round trip.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"Action":"SEND_MESSAGE","RequestId":"1","Content":"hi","Attributes":{"a":"b"}}`,
		`{"Action":"DELETE_MESSAGE","Id":"abcdefABCDEF","Reason":"x"}`, `{"Action":"DISCONNECT_USER","UserId":"u"}`,
		`{"Attributes":{"a":1},"RequestId":"x"}`, `[]`, `null`, `{"Content":null}`, "\xff", `{"Content":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", r, err)
		}
		if _, err := ParseRequest(again); err != nil {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}
