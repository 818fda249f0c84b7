package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
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

var (
	reChild  = regexp.MustCompile(`(?m)^([^#].*)$`)
	reReport = regexp.MustCompile(`#EXT-X-RENDITION-REPORT:URI="([^"]+)"`)
)

// childToken is the token of the first URI line of a playlist.
func childToken(t *testing.T, playlist []byte) string {
	t.Helper()
	u, err := url.Parse(reChild.FindString(string(playlist)))
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("no child URI with a token in\n%s", playlist)
	}
	return u.Query().Get("token")
}

// getFrom is get from another local address (127.0.0.0/8 is all loopback on Linux): another
// client on another network, as far as the edge can tell.
func getFrom(t *testing.T, src, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// wantStatus fails unless resp has code and, for a refusal, a reason containing reason.
func wantStatus(t *testing.T, name string, resp *http.Response, code int, reason string) {
	t.Helper()
	got := resp.Header.Get("X-Glasscast-Reason")
	if resp.StatusCode != code || code == 403 && (got == "" || !strings.Contains(got, reason)) {
		t.Fatalf("%s: %d %q, want %d %q", name, resp.StatusCode, got, code, reason)
	}
}

func TestPrivateChannels(t *testing.T) {
	r := newRig(t, Config{}, "privA", "privB", "test")
	r.publish("privA", 2)
	key := importKey(t, r.store, "key1")
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader) // never imported
	exp := time.Now().Add(time.Hour).Unix()
	exp5 := time.Now().Add(5 * time.Minute).Unix() // for viewer-id and single-use tokens
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
	if strings.Contains(child, good) || !strings.Contains(child, "token="+derivedPrefix) {
		t.Fatalf("child URI %q should carry a derived token", child)
	}
	derived := childToken(t, body)
	resp, body = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(derived)))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "token="+derivedPrefix) || !strings.Contains(resp.Header.Get("Cache-Control"), "private") {
		t.Fatalf("media playlist with derived token: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	objects := childToken(t, body)
	m := reHint.FindStringSubmatch(string(body))
	resp, _ = get(t, r.http+path("privA", "720p/part"+m[1]+".0.m4s?token="+url.QueryEscape(objects)))
	if resp.StatusCode != 200 {
		t.Fatalf("part with derived token: %d", resp.StatusCode)
	}
	resp, _ = get(t, r.http+path("privB", "720p/index.m3u8")+"?token="+url.QueryEscape(derived))
	wantStatus(t, "derived token on another channel", resp, 403, "another channel")
	tampered := derived[:len(derived)-2] + "AA"
	resp, _ = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(tampered)))
	wantStatus(t, "tampered derived token", resp, 403, "malformed")

	// A thousand tokens share one cached multivariant.
	for i := 0; i < 30; i++ {
		tok := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp5, "aws:viewer-id": "v" + string(rune('a'+i))})
		if resp, _ := get(t, r.http+mv+"?token="+tok); resp.StatusCode != 200 {
			t.Fatalf("viewer %d: %d %s", i, resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"))
		}
	}
	if n := r.count(mv); n != 1 {
		t.Fatalf("tokens fragmented the cache: %d upstream multivariant requests", n)
	}

	// Single-use tokens work once, wherever they are tried.
	once := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": exp5, "aws:single-use-uuid": "2f1a6c0e-1111-4b9e-8d3e-9c1a5e1c0001"})
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

// A single-use token is spent by the first request that succeeds, not by one answered 404
// before the broadcast starts or refused for its Origin.
func TestSingleUseSpentOnSuccess(t *testing.T) {
	r := newRig(t, Config{}, "privA")
	key := importKey(t, r.store, "key1")
	mv := r.http + path("privA", "")
	claims := func(uuid string, extra ...any) jwt.MapClaims {
		c := jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": time.Now().Add(5 * time.Minute).Unix(), "aws:single-use-uuid": uuid}
		for i := 0; i+1 < len(extra); i += 2 {
			c[extra[i].(string)] = extra[i+1]
		}
		return c
	}
	early := sign(t, key, claims("8d3e5a51-0001-4b9e-8d3e-9c1a5e1c0001"))
	resp, _ := get(t, mv+"?token="+early)
	wantStatus(t, "single-use token before the broadcast", resp, 404, "")

	r.publish("privA", 2)
	plain := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": time.Now().Add(time.Hour).Unix()})
	waitFor(t, "the broadcast", func() bool { resp, _ := get(t, mv+"?token="+plain); return resp.StatusCode == 200 })
	resp, _ = get(t, mv+"?token="+early)
	wantStatus(t, "single-use token once live", resp, 200, "")
	resp, _ = get(t, mv+"?token="+early)
	wantStatus(t, "single-use token after it played", resp, 403, "single-use token already used")

	for _, strict := range []bool{false, true} {
		uuid := "8d3e5a51-0002-4b9e-8d3e-9c1a5e1c000" + map[bool]string{false: "2", true: "3"}[strict]
		tok := sign(t, key, claims(uuid, "aws:access-control-allow-origin", "https://shop.example", "aws:strict-origin-enforcement", strict))
		resp, _ := get(t, mv+"?token="+tok, "Origin", "https://evil.example")
		wantStatus(t, "single-use token from a wrong origin", resp, 403, "origin not allowed")
		resp, _ = get(t, mv+"?token="+tok, "Origin", "https://shop.example")
		wantStatus(t, "single-use token from its origin after a refusal", resp, 200, "")
		resp, _ = get(t, mv+"?token="+tok, "Origin", "https://shop.example")
		wantStatus(t, "single-use token reused", resp, 403, "already used")
	}

	// A single-use token's derived tokens keep the session playing.
	tok := sign(t, key, claims("8d3e5a51-0004-4b9e-8d3e-9c1a5e1c0004"))
	_, body := get(t, mv+"?token="+tok)
	resp, _ = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(childToken(t, body))))
	wantStatus(t, "media playlist of a single-use session", resp, 200, "")
}

// Derived tokens are bound to one viewer session: not accepted on the multivariant, not from
// another client, each scoped to its kind of URL and short-lived where players renew them.
func TestSessionTokens(t *testing.T) {
	var skew atomic.Int64 // the edge's clock runs this far ahead
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	r := newRig(t, Config{Now: now}, "privA")
	r.publish("privA", 2)
	key := importKey(t, r.store, "key1")
	good := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": time.Now().Add(time.Hour).Unix()})
	mv := path("privA", "")
	media := func(tok string) string { return r.http + path("privA", "720p/index.m3u8?token="+url.QueryEscape(tok)) }

	resp, body := get(t, r.http+mv+"?token="+good)
	wantStatus(t, "multivariant", resp, 200, "")
	sess := childToken(t, body)
	resp, _ = get(t, r.http+mv+"?token="+url.QueryEscape(sess))
	wantStatus(t, "session token on the multivariant", resp, 403, "not accepted on the multivariant")

	resp, body = get(t, media(sess))
	wantStatus(t, "media playlist", resp, 200, "")
	obj := childToken(t, body)
	// Rendition reports carry the multivariant's token unchanged, so players match them.
	for _, rep := range reReport.FindAllStringSubmatch(string(body), -1) {
		u, _ := url.Parse(rep[1])
		if u.Query().Get("token") != sess {
			t.Fatalf("rendition report %q does not carry the session token", rep[1])
		}
	}
	m := reHint.FindStringSubmatch(string(body))
	part := func(tok string) string {
		return r.http + path("privA", "720p/part"+m[1]+".0.m4s?token="+url.QueryEscape(tok))
	}
	resp, _ = get(t, part(obj))
	wantStatus(t, "part", resp, 200, "")
	resp, _ = get(t, part(sess))
	wantStatus(t, "session token on a part", resp, 403, "scope")
	resp, _ = get(t, media(obj))
	wantStatus(t, "object token on a media playlist", resp, 403, "scope")

	// Another client (another address) can use neither.
	resp, _ = getFrom(t, "127.0.1.1", media(sess))
	wantStatus(t, "session token from another client", resp, 403, "another client")
	resp, _ = getFrom(t, "127.0.1.1", part(obj))
	wantStatus(t, "object token from another client", resp, 403, "another client")
	// It plays there with its own token.
	resp, body = getFrom(t, "127.0.1.1", r.http+mv+"?token="+good)
	wantStatus(t, "multivariant from another client", resp, 200, "")
	resp, _ = getFrom(t, "127.0.1.1", media(childToken(t, body)))
	wantStatus(t, "its own session from another client", resp, 200, "")

	// Object tokens expire; the next media playlist renews them.
	skew.Store(int64(61 * time.Second))
	resp, _ = get(t, part(obj))
	wantStatus(t, "expired object token", resp, 403, "expired")
	resp, body = get(t, media(sess))
	wantStatus(t, "media playlist later in the session", resp, 200, "")
	m = reHint.FindStringSubmatch(string(body))
	resp, _ = get(t, part(childToken(t, body)))
	wantStatus(t, "renewed object token", resp, 200, "")
	// Sessions end after SessionMaxAge, whatever the JWT's exp said.
	skew.Store(int64(12*time.Hour + time.Second))
	resp, _ = get(t, media(sess))
	wantStatus(t, "session past its maximum age", resp, 403, "session expired")
}

// The binding is configurable: subnet tolerates a neighbouring address, none any address.
func TestSessionBinding(t *testing.T) {
	for _, c := range []struct {
		binding   Binding
		near, far int // want from 127.0.0.2 and from 127.0.1.1
	}{
		{BindAddress, 403, 403},
		{BindSubnet, 200, 403},
		{BindNone, 200, 200},
	} {
		r := newRig(t, Config{TokenBinding: c.binding}, "privA")
		r.publish("privA", 1)
		key := importKey(t, r.store, "key1")
		good := sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": time.Now().Add(time.Hour).Unix()})
		_, body := get(t, r.http+path("privA", "")+"?token="+good)
		media := r.http + path("privA", "720p/index.m3u8?token="+url.QueryEscape(childToken(t, body)))
		resp, _ := getFrom(t, "127.0.0.2", media)
		wantStatus(t, string(c.binding)+" binding, neighbouring address", resp, c.near, "another client")
		resp, _ = getFrom(t, "127.0.1.1", media)
		wantStatus(t, string(c.binding)+" binding, other network", resp, c.far, "another client")
	}
	if _, err := ParseBinding("cookie"); err == nil {
		t.Fatal("ParseBinding accepted an unknown binding")
	}
}

// aws:access-control-allow-origin restricts the multivariant playlist alone unless
// aws:strict-origin-enforcement is true, then every request.
func TestOriginRules(t *testing.T) {
	r := newRig(t, Config{}, "privA")
	r.publish("privA", 2)
	key := importKey(t, r.store, "key1")
	tok := func(origins string, strict any) string {
		c := jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": time.Now().Add(time.Hour).Unix(), "aws:access-control-allow-origin": origins}
		if strict != nil {
			c["aws:strict-origin-enforcement"] = strict
		}
		return sign(t, key, c)
	}
	mv := r.http + path("privA", "")
	acao := func(resp *http.Response) string { return resp.Header.Get("Access-Control-Allow-Origin") }

	loose := tok("https://shop.example, https://*.partner.example", nil)
	for _, o := range []string{"https://shop.example", "https://www.partner.example", "https://a.b.partner.example"} {
		resp, _ := get(t, mv+"?token="+loose, "Origin", o)
		if wantStatus(t, "multivariant from "+o, resp, 200, ""); acao(resp) != o || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Fatalf("multivariant from %s: ACAO %q Vary %q", o, acao(resp), resp.Header.Get("Vary"))
		}
	}
	for _, o := range []string{"https://evil.example", "http://shop.example", "https://partner.example", "https://shop.example.evil", "https://evilpartner.example"} {
		resp, _ := get(t, mv+"?token="+loose, "Origin", o)
		wantStatus(t, "multivariant from "+o, resp, 403, "origin not allowed")
	}
	// A client without Origin is no browser: IVS's restriction "does not restrict playback
	// from a non-browser client" unless strict.
	resp, body := get(t, mv+"?token="+loose)
	if wantStatus(t, "multivariant without Origin", resp, 200, ""); acao(resp) != "" {
		t.Fatalf("multivariant without Origin: ACAO %q", acao(resp))
	}
	// Without strict enforcement the session's other requests are not restricted.
	resp, body = get(t, r.http+path("privA", "720p/index.m3u8?token="+url.QueryEscape(childToken(t, body))), "Origin", "https://evil.example")
	if wantStatus(t, "media playlist from another origin, not strict", resp, 200, ""); acao(resp) != "*" {
		t.Fatalf("media playlist, not strict: ACAO %q", acao(resp))
	}

	strict := tok("https://shop.example", true)
	resp, body = get(t, mv+"?token="+strict, "Origin", "https://shop.example")
	wantStatus(t, "strict multivariant from its origin", resp, 200, "")
	media := r.http + path("privA", "720p/index.m3u8?token="+url.QueryEscape(childToken(t, body)))
	resp, _ = get(t, media, "Origin", "https://evil.example")
	wantStatus(t, "strict media playlist from another origin", resp, 403, "origin not allowed")
	resp, _ = get(t, media)
	wantStatus(t, "strict media playlist without Origin", resp, 403, "no Origin")
	resp, body = get(t, media, "Origin", "https://shop.example")
	if wantStatus(t, "strict media playlist from its origin", resp, 200, ""); acao(resp) != "https://shop.example" {
		t.Fatalf("strict media playlist: ACAO %q", acao(resp))
	}
	part := r.http + path("privA", "720p/part"+reHint.FindStringSubmatch(string(body))[1]+".0.m4s?token="+url.QueryEscape(childToken(t, body)))
	resp, _ = get(t, part, "Origin", "https://evil.example")
	wantStatus(t, "strict part from another origin", resp, 403, "origin not allowed")
	resp, _ = get(t, part, "Origin", "https://shop.example")
	wantStatus(t, "strict part from its origin", resp, 200, "")

	// IVS documents the flag as a JSON boolean; a string is refused, never read as false.
	resp, _ = get(t, mv+"?token="+tok("https://shop.example", "true"), "Origin", "https://evil.example")
	wantStatus(t, "strict enforcement as a string", resp, 403, "aws:strict-origin-enforcement must be a JSON boolean")
	resp, _ = get(t, mv+"?token="+tok("https://a.example,https://b.example,https://c.example,https://d.example,https://e.example,https://f.example", true), "Origin", "https://a.example")
	wantStatus(t, "six origins with strict enforcement", resp, 403, "at most 5 origins")
	resp, _ = get(t, mv+"?token="+tok("*", true), "Origin", "https://any.example")
	if wantStatus(t, "strict with any origin", resp, 200, ""); acao(resp) != "*" {
		t.Fatalf("allow-origin *: ACAO %q", acao(resp))
	}
}

// Every IVS claim is of the JSON type IVS documents, and tokens naming a viewer or used once
// expire at most 10 minutes out.
func TestClaimTypes(t *testing.T) {
	r := newRig(t, Config{}, "privA")
	r.publish("privA", 1)
	key := importKey(t, r.store, "key1")
	mv := r.http + path("privA", "")
	in5, in60 := time.Now().Add(5*time.Minute).Unix(), time.Now().Add(time.Hour).Unix()
	for _, c := range []struct {
		name   string
		claims jwt.MapClaims
		reason string // "" plays
	}{
		{"channel-arn a number", jwt.MapClaims{"aws:channel-arn": 7}, "aws:channel-arn must be a string"},
		{"exp a string", jwt.MapClaims{"exp": "2099-01-01"}, "exp must be a number"},
		{"allow-origin a list", jwt.MapClaims{"aws:access-control-allow-origin": []string{"https://a.example"}}, "aws:access-control-allow-origin must be a string"},
		{"allow-origin not an origin", jwt.MapClaims{"aws:access-control-allow-origin": "shop.example"}, "aws:access-control-allow-origin must be"},
		{"strict a number", jwt.MapClaims{"aws:strict-origin-enforcement": 1}, "JSON boolean"},
		{"viewer-id a number", jwt.MapClaims{"aws:viewer-id": 42, "exp": in5}, "aws:viewer-id must be a string"},
		{"viewer-id too long", jwt.MapClaims{"aws:viewer-id": strings.Repeat("v", 41), "exp": in5}, "1 to 40 characters"},
		{"single-use-uuid not a UUID", jwt.MapClaims{"aws:single-use-uuid": "once", "exp": in5}, "must be a UUID"},
		{"single-use-uuid a number", jwt.MapClaims{"aws:single-use-uuid": 1, "exp": in5}, "must be a string"},
		{"viewer-session-version a string", jwt.MapClaims{"aws:viewer-id": "v", "aws:viewer-session-version": "3", "exp": in5}, "64-bit integer"},
		{"viewer-session-version a fraction", jwt.MapClaims{"aws:viewer-id": "v", "aws:viewer-session-version": 1.5, "exp": in5}, "64-bit integer"},
		{"maximum-resolution unknown", jwt.MapClaims{"aws:maximum-resolution": "4K"}, "aws:maximum-resolution must be"},
		{"viewer-id expiring in an hour", jwt.MapClaims{"aws:viewer-id": "v1", "exp": in60}, "more than 10 minutes out"},
		{"single-use expiring in 11 minutes", jwt.MapClaims{"aws:single-use-uuid": "5b0c7a8e-5a1e-4f4e-9c2d-0b1c2d3e4f50", "exp": time.Now().Add(11 * time.Minute).Unix()}, "more than 10 minutes out"},
		{"every claim well typed", jwt.MapClaims{"aws:viewer-id": strings.Repeat("v", 40), "aws:viewer-session-version": 1733200000, "aws:maximum-resolution": "HD",
			"aws:access-control-allow-origin": "*", "aws:strict-origin-enforcement": false, "exp": time.Now().Add(10 * time.Minute).Unix()}, ""},
	} {
		claims := jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "exp": in60}
		for k, v := range c.claims {
			claims[k] = v
		}
		resp, _ := get(t, mv+"?token="+sign(t, key, claims))
		if c.reason == "" {
			wantStatus(t, c.name, resp, 200, "")
		} else {
			wantStatus(t, c.name, resp, 403, c.reason)
		}
	}
}

// Address binding keeps one subscriber's network together: an IPv6 /64 under "ip" (privacy
// extensions rotate addresses inside it), a /24 or /48 under "subnet".
func TestBindPrefixes(t *testing.T) {
	for _, c := range []struct {
		binding Binding
		a, b    string
		same    bool
	}{
		{BindAddress, "203.0.113.7", "203.0.113.7", true},
		{BindAddress, "203.0.113.7", "203.0.113.8", false},
		{BindAddress, "2001:db8:1:2::1", "2001:db8:1:2:abcd::9", true},
		{BindAddress, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{BindSubnet, "203.0.113.7", "203.0.113.200", true},
		{BindSubnet, "203.0.113.7", "203.0.114.7", false},
		{BindSubnet, "2001:db8:1:2::1", "2001:db8:1:ff::1", true},
		{BindSubnet, "2001:db8:1:2::1", "2001:db8:2:2::1", false},
		{BindAddress, "::ffff:203.0.113.7", "203.0.113.7", true},
		{BindNone, "203.0.113.7", "198.51.100.1", true},
	} {
		v := &TokenVerifier{secret: []byte("k"), binding: c.binding}
		if got := v.bind(c.a) == v.bind(c.b); got != c.same {
			t.Errorf("%s binding: %s and %s bound together %v, want %v", c.binding, c.a, c.b, got, c.same)
		}
	}
}

// originAllowed reads the viewer's Origin header: never panics, and "*." matches subdomains
// only.
func FuzzOriginAllowed(f *testing.F) {
	f.Add("https://*.shop.example,https://a.example", "https://www.shop.example")
	f.Add("https://*.", "https://.")
	f.Add("*", "")
	f.Fuzz(func(t *testing.T, list, origin string) {
		if originAllowed(list, origin) && origin == "" {
			t.Fatal("allowed a request without Origin")
		}
		if originAllowed("https://*.shop.example", origin) && !strings.HasSuffix(strings.ToLower(origin), ".shop.example") {
			t.Fatalf("*.shop.example allowed %q", origin)
		}
	})
}
