package e2e

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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/golang-jwt/jwt/v5"
)

// Private channel tokens as IVS documents them (README, "Private channels"), against the real
// binary: single-use tokens are spent only by a request that succeeds, session URLs work for
// one client only and never as a playback URL, the allow-origin claim restricts the
// multivariant playlist (every request when strict), and claims of the wrong type are refused.

// tokenSigner imports one playback key pair through the API (the account allows 3) and signs
// any number of tokens for channelARN with it.
type tokenSigner struct {
	t          *testing.T
	key        *ecdsa.PrivateKey
	channelARN string
}

func newTokenSigner(t *testing.T, ctx context.Context, c *ivs.Client, channelARN string) *tokenSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if _, err := c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(pub)}); err != nil {
		t.Fatal(err)
	}
	return &tokenSigner{t: t, key: k, channelARN: channelARN}
}

// sign returns a token for the channel expiring in 5 minutes, with extra claims (name, value
// pairs; a nil value removes the claim).
func (s *tokenSigner) sign(extra ...any) string {
	s.t.Helper()
	claims := jwt.MapClaims{"aws:channel-arn": s.channelARN, "exp": time.Now().Add(5 * time.Minute).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(claims, extra[i].(string))
		} else {
			claims[extra[i].(string)] = extra[i+1]
		}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES384, claims).SignedString(s.key)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// fetch GETs u from the local address src ("" for the default), with header name/value pairs.
func fetch(t *testing.T, src, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	d := &net.Dialer{}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 20 * time.Second}
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
	return resp, string(b)
}

// expect fails unless resp has code and, when refused, a reason header containing reason.
func expect(t *testing.T, what string, resp *http.Response, code int, reason string) {
	t.Helper()
	got := resp.Header.Get("X-Glasscast-Reason")
	if resp.StatusCode != code || code == 403 && (got == "" || !strings.Contains(got, reason)) {
		t.Fatalf("%s: %d %q, want %d %q", what, resp.StatusCode, got, code, reason)
	}
}

var reFirstURI = regexp.MustCompile(`(?m)^[^#\s].*$`)

// firstChild resolves the first URI line of playlist against base.
func firstChild(t *testing.T, base, playlist string) string {
	t.Helper()
	rel := reFirstURI.FindString(playlist)
	if rel == "" {
		t.Fatalf("no URI line in\n%s", playlist)
	}
	b, _ := url.Parse(base)
	u, err := b.Parse(rel)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

func TestPrivateChannelTokenRules(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true, Authorized: true})
	s := newTokenSigner(t, ctx, c, *ch.Arn)
	mv := *ch.PlaybackUrl + "?token="

	// A viewer who opens the player before the broadcast starts gets 404 and keeps the token.
	early := s.sign("aws:single-use-uuid", "0b7c3e9a-0001-4c1e-9d2f-6a5b4c3d2e1f")
	resp, _ := fetch(t, "", mv+early)
	expect(t, "single-use token, channel offline", resp, 404, "")
	publish(t, n.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, mv+s.sign())
	resp, _ = fetch(t, "", mv+early)
	expect(t, "the same single-use token once live", resp, 200, "")
	resp, _ = fetch(t, "", mv+early)
	expect(t, "the single-use token again", resp, 403, "single-use token already used")

	t.Run("wrong origin does not spend", func(t *testing.T) {
		for i, strict := range []bool{false, true} {
			tok := s.sign("aws:single-use-uuid", "0b7c3e9a-0002-4c1e-9d2f-6a5b4c3d2e1"+string(rune('0'+i)),
				"aws:access-control-allow-origin", "https://shop.example", "aws:strict-origin-enforcement", strict)
			resp, _ := fetch(t, "", mv+tok, "Origin", "https://evil.example")
			expect(t, "first request from a wrong origin", resp, 403, "origin not allowed")
			resp, _ = fetch(t, "", mv+tok, "Origin", "https://shop.example")
			expect(t, "then from its origin", resp, 200, "")
		}
	})

	t.Run("session URLs", func(t *testing.T) {
		resp, body := fetch(t, "", mv+s.sign("aws:single-use-uuid", "0b7c3e9a-0003-4c1e-9d2f-6a5b4c3d2e1f"))
		expect(t, "multivariant", resp, 200, "")
		media := firstChild(t, *ch.PlaybackUrl, body)
		derived, _ := url.Parse(media)
		sess := derived.Query().Get("token")
		resp, body = fetch(t, "", media)
		expect(t, "media playlist", resp, 200, "")
		part := firstChild(t, media, body)
		resp, _ = fetch(t, "", part)
		expect(t, "segment", resp, 200, "")

		// The multivariant playlist takes the viewer's JWT only.
		resp, _ = fetch(t, "", mv+url.QueryEscape(sess))
		expect(t, "derived token on the multivariant", resp, 403, "not accepted on the multivariant")
		// Another client (another address) gets nothing from this session's URLs.
		resp, _ = fetch(t, "127.0.1.1", media)
		expect(t, "media playlist URL from another client", resp, 403, "another client")
		resp, _ = fetch(t, "127.0.1.1", part)
		expect(t, "segment URL from another client", resp, 403, "another client")
		// The session's own client keeps playing.
		resp, _ = fetch(t, "", media)
		expect(t, "media playlist again", resp, 200, "")
	})

	t.Run("allow-origin without strict enforcement", func(t *testing.T) {
		tok := s.sign("aws:access-control-allow-origin", "https://shop.example")
		resp, body := fetch(t, "", mv+tok, "Origin", "https://shop.example")
		if expect(t, "multivariant from the origin", resp, 200, ""); resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Fatalf("multivariant: Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp, _ = fetch(t, "", mv+tok, "Origin", "https://evil.example")
		expect(t, "multivariant from another origin", resp, 403, "origin not allowed")
		// As IVS: the restriction is the multivariant playlist's only.
		media := firstChild(t, *ch.PlaybackUrl, body)
		resp, _ = fetch(t, "", media, "Origin", "https://evil.example")
		if expect(t, "media playlist from another origin", resp, 200, ""); resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("media playlist: Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("claim types", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			claims []any
			reason string
		}{
			{"strict enforcement as a string", []any{"aws:access-control-allow-origin", "https://shop.example", "aws:strict-origin-enforcement", "true"}, "must be a JSON boolean"},
			{"channel-arn as a number", []any{"aws:channel-arn", 12}, "aws:channel-arn must be a string"},
			{"viewer-id as a number", []any{"aws:viewer-id", 12}, "aws:viewer-id must be a string"},
			{"single-use-uuid not a UUID", []any{"aws:single-use-uuid", "x"}, "must be a UUID"},
			{"exp as a string", []any{"exp", "tomorrow"}, "exp must be a number"},
			{"viewer-id token for an hour", []any{"aws:viewer-id", "v1", "exp", time.Now().Add(time.Hour).Unix()}, "more than 10 minutes out"},
		} {
			resp, _ := fetch(t, "", mv+s.sign(c.claims...), "Origin", "https://evil.example")
			expect(t, c.name, resp, 403, c.reason)
		}
	})
}

// Players pick up the renewed object tokens: with a 3 s lifetime, gohlslib, hls.js and Amazon's
// IVS player play well past it, while an object URL kept longer is refused.
func TestPrivateChannelTokenRenewal(t *testing.T) {
	n := startServe(t, "", "--edge-object-token-ttl", "3s")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true, Authorized: true})
	s := newTokenSigner(t, ctx, c, *ch.Arn)
	mv := *ch.PlaybackUrl + "?token="
	publish(t, n.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, mv+s.sign())

	resp, body := fetch(t, "", mv+s.sign())
	expect(t, "multivariant", resp, 200, "")
	media := firstChild(t, *ch.PlaybackUrl, body)
	_, body = fetch(t, "", media)
	stale := firstChild(t, media, body)
	time.Sleep(4 * time.Second)
	resp, _ = fetch(t, "", stale)
	expect(t, "segment URL past its lifetime", resp, 403, "expired")
	_, body = fetch(t, "", media)
	resp, _ = fetch(t, "", firstChild(t, media, body))
	expect(t, "segment URL from a fresh media playlist", resp, 200, "")

	p := play(t, mv+s.sign("aws:single-use-uuid", "0b7c3e9a-0004-4c1e-9d2f-6a5b4c3d2e1f"), 12*time.Second)
	p.mu.Lock()
	frames := len(p.videoPTS)
	p.mu.Unlock()
	if frames < 8*30 {
		t.Fatalf("gohlslib got %d video frames in 12 s through 3 s object tokens", frames)
	}

	needBrowser(t)
	// Progress of each player's playhead over the run: at least two 3 s lifetimes (the IVS
	// player takes a while to start on a loaded machine, hence the long run).
	ivsFrom, ivsAt, hlsFrom, hlsAt := -1.0, 0.0, -1.0, 0.0
	rep := runIVSPlayer(t, mv+s.sign("aws:viewer-id", "renewal"), 25, false, func(smp ivsSample) {
		if smp.IVS != nil && smp.IVS.State == "Playing" {
			if ivsFrom < 0 {
				ivsFrom = smp.IVS.Position
			}
			ivsAt = smp.IVS.Position
		}
		if smp.HLS.CurrentTime > 0 {
			if hlsFrom < 0 {
				hlsFrom = smp.HLS.CurrentTime
			}
			hlsAt = smp.HLS.CurrentTime
		}
	})
	if len(rep.Errors) > 0 || ivsFrom < 0 || hlsFrom < 0 || ivsAt-ivsFrom < 6 || hlsAt-hlsFrom < 6 {
		t.Fatalf("players through 3 s object tokens: IVS played %.1f s, hls.js %.1f s, errors %+v", ivsAt-ivsFrom, hlsAt-hlsFrom, rep.Errors)
	}
	t.Logf("through 3 s object tokens: IVS player played %.1f s, hls.js %.1f s", ivsAt-ivsFrom, hlsAt-hlsFrom)
}
