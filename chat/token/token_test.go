package token

import (
	"bytes"
	"crypto/rand"
	"errors"
	"regexp"
	"testing"
	"time"
)

func newSealer(t testing.TB) *Sealer {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rfc7230Token is what a WebSocket subprotocol may contain.
var rfc7230Token = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

func TestMintOpen(t *testing.T) {
	s := newSealer(t)
	now := time.Now()
	c := Claims{RoomID: "abcdefABCDEF", UserID: "üser 1", Attributes: map[string]string{"name": "ann"},
		Capabilities: []string{SendMessage}, TokenExpires: now.Add(time.Hour), SessionExpires: now.Add(2 * time.Hour)}
	tok, err := s.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	if !rfc7230Token.MatchString(tok) || bytes.ContainsAny([]byte(tok), "=/ ") {
		t.Fatalf("token %q is not subprotocol-safe", tok)
	}
	got, err := s.Open(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != c.UserID || got.RoomID != c.RoomID || got.Attributes["name"] != "ann" || !got.Can(SendMessage) || got.Can(DeleteMessage) || got.ID == "" {
		t.Fatalf("claims %+v", got)
	}
	tok2, _ := s.Mint(c)
	if tok2 == tok {
		t.Fatal("two tokens for the same claims are identical")
	}
	if _, err := s.Open(tok, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token: %v", err)
	}
	// Any change to a token, or another deployment's key, refuses it.
	b := []byte(tok)
	b[len(b)/2] ^= 1
	if _, err := s.Open(string(b), now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("altered token: %v", err)
	}
	if _, err := newSealer(t).Open(tok, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("foreign token: %v", err)
	}
}

// FuzzOpen feeds arbitrary subprotocol values to Open: it must refuse them without panicking.
func FuzzOpen(f *testing.F) {
	s := newSealer(f)
	tok, _ := s.Mint(Claims{RoomID: "r", UserID: "u", TokenExpires: time.Now().Add(time.Hour)})
	for _, seed := range []string{tok, "", "gc1.", "gc1.AAAA", "gc1.====", tok[:len(tok)-3], "x" + tok} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := s.Open(in, time.Now())
		if err == nil && in != tok {
			t.Fatalf("forged token %q accepted: %+v", in, c)
		}
	})
}
