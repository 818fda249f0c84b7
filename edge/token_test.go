package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"glasscast/store"
)

func importKey(t *testing.T, st *store.Store, id string) *ecdsa.PrivateKey {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err := st.PlaybackKeyPairs.Create(context.Background(), id, store.PlaybackKeyPair{ID: id, PublicKeyPEM: p}); err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, k *ecdsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES384, claims).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func channelARN(id string) string { return "arn:aws:ivs:" + region + ":" + account + ":channel/" + id }

var reChild = regexp.MustCompile(`(?m)^([^#].*)$`)

func TestPrivateChannels(t *testing.T) {
	r := newRig(t, Config{}, "privA", "privB", "test")
	r.publish("privA", 2)
	key := importKey(t, r.store, "key1")
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader) // never imported
	exp := time.Now().Add(time.Hour).Unix()
	good := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp})
	mv := path("privA", "")

	deny := func(name, query string, hdr ...string) {
		t.Helper()
		resp, body := get(t, r.http+mv+query, hdr...)
		if resp.StatusCode != 403 || resp.Header.Get("X-Glasscast-Reason") == "" || strings.Contains(string(body), "#EXTM3U") {
			t.Fatalf("%s: %d reason %q", name, resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"))
		}
	}
	deny("no token", "")
	deny("malformed token", "?token=not.a.jwt")
	deny("expired token", "?token="+sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": time.Now().Add(-time.Minute).Unix()}))
	deny("token without exp", "?token="+sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA")}))
	deny("other channel's token", "?token="+sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privB"), "exp": exp}))
	deny("unknown key", "?token="+sign(t, other, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp}))
	deny("HS256 token", "?token="+func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp}).SignedString([]byte("k"))
		return s
	}())
	strict := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp,
		"aws:access-control-allow-origin": "https://shop.example", "aws:strict-origin-enforcement": true})
	deny("wrong origin", "?token="+strict, "Origin", "https://evil.example")

	resp, _ := get(t, r.http+mv+"?token="+strict, "Origin", "https://shop.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("strict origin token from its origin: %d ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// A good token plays; child URIs carry a derived token, never the JWT, and it works.
	resp, body := get(t, r.fast+mv+"?token="+good)
	if resp.StatusCode != 200 {
		t.Fatalf("good token: %d %s", resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"))
	}
	child := reChild.FindString(string(body))
	if strings.Contains(child, good) || !strings.Contains(child, "token=gc1.") {
		t.Fatalf("child URI %q should carry a derived token", child)
	}
	u, _ := url.Parse(child)
	derived := u.Query().Get("token")
	resp, body = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(derived)))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "token=gc1.") || !strings.Contains(resp.Header.Get("Cache-Control"), "private") {
		t.Fatalf("media playlist with derived token: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	m := reHint.FindStringSubmatch(string(body))
	resp, _ = get(t, r.http+path("privA", "720p/part"+m[1]+".0.m4s?token="+url.QueryEscape(derived)))
	if resp.StatusCode != 200 {
		t.Fatalf("part with derived token: %d", resp.StatusCode)
	}
	resp, _ = get(t, r.http+path("privB", "")+"?token="+url.QueryEscape(derived))
	if resp.StatusCode != 403 {
		t.Fatalf("derived token on another channel: %d", resp.StatusCode)
	}
	tampered := derived[:len(derived)-2] + "AA"
	resp, _ = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(tampered)))
	if resp.StatusCode != 403 {
		t.Fatalf("tampered derived token: %d", resp.StatusCode)
	}

	// A thousand tokens share one cached multivariant.
	for i := 0; i < 30; i++ {
		tok := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp, "aws:viewer-id": "v" + string(rune('a'+i))})
		if resp, _ := get(t, r.http+mv+"?token="+tok); resp.StatusCode != 200 {
			t.Fatalf("viewer %d: %d", i, resp.StatusCode)
		}
	}
	if n := r.count(mv); n != 1 {
		t.Fatalf("tokens fragmented the cache: %d upstream multivariant requests", n)
	}

	// Single-use tokens work once, wherever they are tried.
	once := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp, "aws:single-use-uuid": "2f1a6c0e-1111-4b9e-8d3e-9c1a5e1c0001"})
	if resp, _ := get(t, r.http+mv+"?token="+once); resp.StatusCode != 200 {
		t.Fatalf("single-use token, first use: %d", resp.StatusCode)
	}
	deny("single-use token reused", "?token="+once)

	// Deleting the key pair revokes its tokens, derived ones included.
	if err := r.store.PlaybackKeyPairs.Delete(context.Background(), "key1"); err != nil {
		t.Fatal(err)
	}
	deny("revoked key", "?token="+good)
	resp, _ = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(derived)))
	if resp.StatusCode != 403 {
		t.Fatalf("derived token after its key was revoked: %d", resp.StatusCode)
	}

	// Public channels need nothing.
	r2 := newRig(t, Config{}, "test")
	r2.publish("test", 1)
	if resp, _ := get(t, r2.http+path("test", "")); resp.StatusCode != 200 {
		t.Fatalf("public channel: %d", resp.StatusCode)
	}
}
