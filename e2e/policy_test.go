package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/golang-jwt/jwt/v5"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestPlaybackRestrictionPolicyAPI drives every playback restriction policy operation and
// StartViewerSessionRevocation, with their errors, through the real IVS client, on a serve
// that cannot tell viewers' countries (so policies naming countries are refused).
func TestPlaybackRestrictionPolicyAPI(t *testing.T) {
	n := startServe(t, "", "--quotas-playback-restriction-policies", "3")
	c := n.ivsClient()
	ctx := ctxT(t, time.Minute)
	wantMsg := func(err error, code, field string) {
		t.Helper()
		wantCode(t, err, code)
		// IVS's error shapes carry the text in exceptionMessage.
		var msg string
		var ve *types.ValidationException
		if errors.As(err, &ve) && ve.ExceptionMessage != nil {
			msg = *ve.ExceptionMessage
		}
		if !strings.Contains(msg, field) {
			t.Fatalf("%s does not name %s: %q", code, field, msg)
		}
	}

	p1, err := c.CreatePlaybackRestrictionPolicy(ctx, &ivs.CreatePlaybackRestrictionPolicyInput{Name: aws.String("site-a"),
		AllowedOrigins: []string{"https://a.example"}, Tags: map[string]string{"team": "video"}})
	if err != nil {
		t.Fatal(err)
	}
	p := p1.PlaybackRestrictionPolicy
	if !strings.HasPrefix(*p.Arn, "arn:aws:ivs:"+testRegion+":") || !strings.Contains(*p.Arn, ":playback-restriction-policy/") ||
		*p.Name != "site-a" || *p.EnableStrictOriginEnforcement || len(p.AllowedCountries) != 0 || p.AllowedOrigins[0] != "https://a.example" || p.Tags["team"] != "video" {
		t.Fatalf("created: %+v", p)
	}
	arn := p.Arn

	_, err = c.CreatePlaybackRestrictionPolicy(ctx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedCountries: []string{"NZ"}})
	wantMsg(err, "ValidationException", "edge.countryHeader")
	if _, err := c.CreatePlaybackRestrictionPolicy(ctx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedCountries: []string{"*"}}); err != nil {
		t.Fatalf("allowedCountries [*]: %v", err)
	}
	for _, bad := range []struct {
		in    ivs.CreatePlaybackRestrictionPolicyInput
		field string
	}{
		{ivs.CreatePlaybackRestrictionPolicyInput{AllowedCountries: []string{"XX"}}, "allowedCountries"},
		{ivs.CreatePlaybackRestrictionPolicyInput{AllowedCountries: []string{"nz"}}, "allowedCountries"},
		{ivs.CreatePlaybackRestrictionPolicyInput{AllowedOrigins: []string{"ftp://a.example"}}, "allowedOrigins"},
		{ivs.CreatePlaybackRestrictionPolicyInput{AllowedOrigins: []string{"https://a.example/path"}}, "allowedOrigins"},
		{ivs.CreatePlaybackRestrictionPolicyInput{Name: aws.String("no spaces")}, "name"},
		{ivs.CreatePlaybackRestrictionPolicyInput{Tags: map[string]string{"aws:x": "y"}}, "tags"},
	} {
		_, err := c.CreatePlaybackRestrictionPolicy(ctx, &bad.in)
		wantMsg(err, "ValidationException", bad.field)
	}

	got, err := c.GetPlaybackRestrictionPolicy(ctx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: arn})
	if err != nil || *got.PlaybackRestrictionPolicy.Name != "site-a" {
		t.Fatalf("get: %+v %v", got, err)
	}
	missing := aws.String(strings.Replace(*arn, "/", "/x", 1))
	_, err = c.GetPlaybackRestrictionPolicy(ctx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: missing})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.GetPlaybackRestrictionPolicy(ctx, &ivs.GetPlaybackRestrictionPolicyInput{Arn: aws.String("arn:aws:ivs:x:1:channel/abc")})
	wantMsg(err, "ValidationException", "arn")

	up, err := c.UpdatePlaybackRestrictionPolicy(ctx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: arn, Name: aws.String("site-a2"),
		EnableStrictOriginEnforcement: aws.Bool(true)})
	if err != nil || *up.PlaybackRestrictionPolicy.Name != "site-a2" || !*up.PlaybackRestrictionPolicy.EnableStrictOriginEnforcement ||
		up.PlaybackRestrictionPolicy.AllowedOrigins[0] != "https://a.example" {
		t.Fatalf("update: %+v %v", up, err)
	}
	_, err = c.UpdatePlaybackRestrictionPolicy(ctx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: missing})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.UpdatePlaybackRestrictionPolicy(ctx, &ivs.UpdatePlaybackRestrictionPolicyInput{Arn: arn, AllowedCountries: []string{"FR"}})
	wantMsg(err, "ValidationException", "allowedCountries")

	if _, err := c.CreatePlaybackRestrictionPolicy(ctx, &ivs.CreatePlaybackRestrictionPolicyInput{Name: aws.String("third")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreatePlaybackRestrictionPolicy(ctx, &ivs.CreatePlaybackRestrictionPolicyInput{})
	wantCode(t, err, "ServiceQuotaExceededException")

	pages, seen := 0, map[string]bool{}
	pg := ivs.NewListPlaybackRestrictionPoliciesPaginator(c, &ivs.ListPlaybackRestrictionPoliciesInput{MaxResults: aws.Int32(2)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, s := range out.PlaybackRestrictionPolicies {
			seen[*s.Arn] = true
		}
	}
	if pages != 2 || len(seen) != 3 || !seen[*arn] {
		t.Fatalf("listed %d policies in %d pages", len(seen), pages)
	}

	if _, err := c.TagResource(ctx, &ivs.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &ivs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(ctx, &ivs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["env"] != "prod" {
		t.Fatalf("tags: %+v %v", tags, err)
	}

	ch, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: arn})
	if err != nil || *ch.Channel.PlaybackRestrictionPolicyArn != *arn {
		t.Fatalf("channel with policy: %+v %v", ch, err)
	}
	gc, err := c.GetChannel(ctx, &ivs.GetChannelInput{Arn: ch.Channel.Arn})
	if err != nil || *gc.Channel.PlaybackRestrictionPolicyArn != *arn {
		t.Fatalf("get channel: %v", err)
	}
	lc, err := c.ListChannels(ctx, &ivs.ListChannelsInput{FilterByPlaybackRestrictionPolicyArn: arn})
	if err != nil || len(lc.Channels) != 1 || *lc.Channels[0].PlaybackRestrictionPolicyArn != *arn {
		t.Fatalf("list channels by policy: %+v %v", lc, err)
	}
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: missing})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: aws.String("not-an-arn")})
	wantMsg(err, "ValidationException", "playbackRestrictionPolicyArn")

	_, err = c.DeletePlaybackRestrictionPolicy(ctx, &ivs.DeletePlaybackRestrictionPolicyInput{Arn: arn})
	wantCode(t, err, "ConflictException")
	if _, err := c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Channel.Arn, PlaybackRestrictionPolicyArn: aws.String("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeletePlaybackRestrictionPolicy(ctx, &ivs.DeletePlaybackRestrictionPolicyInput{Arn: arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeletePlaybackRestrictionPolicy(ctx, &ivs.DeletePlaybackRestrictionPolicyInput{Arn: arn})
	wantCode(t, err, "ResourceNotFoundException")

	// StartViewerSessionRevocation.
	if _, err := c.StartViewerSessionRevocation(ctx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Channel.Arn,
		ViewerId: aws.String("viewer-1"), ViewerSessionVersionsLessThanOrEqualTo: 3}); err != nil {
		t.Fatal(err)
	}
	_, err = c.StartViewerSessionRevocation(ctx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Channel.Arn, ViewerId: aws.String(strings.Repeat("v", 41))})
	wantMsg(err, "ValidationException", "viewerId")
	_, err = c.StartViewerSessionRevocation(ctx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Channel.Arn, ViewerId: aws.String("v"), ViewerSessionVersionsLessThanOrEqualTo: -1})
	wantMsg(err, "ValidationException", "viewerSessionVersionsLessThanOrEqualTo")
	_, err = c.StartViewerSessionRevocation(ctx, &ivs.StartViewerSessionRevocationInput{ChannelArn: aws.String(strings.Replace(*ch.Channel.Arn, "/", "/x", 1)), ViewerId: aws.String("v")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.StartViewerSessionRevocation(ctx, &ivs.StartViewerSessionRevocationInput{ChannelArn: arn, ViewerId: aws.String("v")})
	wantMsg(err, "ValidationException", "channelArn")
}

// writeCountryDB writes a MaxMind-format country database with MaxMind's writer.
func writeCountryDB(t *testing.T, nets map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, iso := range nets {
		_, n, _ := net.ParseCIDR(cidr)
		if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(iso)}}); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "country.mmdb")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return p
}

// headerTransport sets request headers, as a browser (Origin) or a CDN (country) would.
type headerTransport struct {
	hdr   map[string]string
	local net.IP // source address, for the geolocation database
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.hdr {
		r.Header.Set(k, v)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: h.local}}
	return (&http.Transport{DialContext: d.DialContext}).RoundTrip(r)
}

// TestPlaybackRestrictionPolicyEnforced: a policy allowing one origin and one country. On
// serve's edge the country comes from CloudFront-Viewer-Country; on a `glasscast edge` from a
// MaxMind database that places 127.0.0.1 in NZ and 127.0.0.2 in FR. The allowed origin and
// country play (gohlslib receives frames); the others are 403 with the reason in a header.
func TestPlaybackRestrictionPolicyEnforced(t *testing.T) {
	natsAddr, originAddr := freePort(t), freePort(t)
	a := startServe(t, "", "--nats-listen", natsAddr, "--origin-listen", originAddr, "--edge-country-header", "CloudFront-Viewer-Country")
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, a)...)
	db := writeCountryDB(t, map[string]string{"127.0.0.1/32": "NZ", "127.0.0.2/32": "FR"})
	e2 := startRole(t, "edge", append(join, "--edge-geoip-database", db)...)
	c := a.ivsClient()
	ctx := ctxT(t, 90*time.Second)
	pol, err := c.CreatePlaybackRestrictionPolicy(ctx, &ivs.CreatePlaybackRestrictionPolicyInput{
		AllowedOrigins: []string{"https://a.example"}, AllowedCountries: []string{"NZ"}})
	if err != nil {
		t.Fatal(err)
	}
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true,
		PlaybackRestrictionPolicyArn: pol.PlaybackRestrictionPolicy.Arn})
	publish(t, a.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	playbackPath := strings.TrimPrefix(*ch.PlaybackUrl, a.endpoint())

	viewer := func(hdr map[string]string, local net.IP) *http.Client {
		return &http.Client{Transport: headerTransport{hdr: hdr, local: local}, Timeout: 10 * time.Second}
	}
	lo1, lo2 := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)
	allowed := map[string]*http.Client{
		"header": viewer(map[string]string{"Origin": "https://a.example", "CloudFront-Viewer-Country": "NZ"}, lo1),
		"db":     viewer(map[string]string{"Origin": "https://a.example"}, lo1),
	}
	bases := map[string]string{"header": a.endpoint(), "db": e2.endpoint()}
	// Wait until the edge answers with the stream (the first segments take a moment).
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := allowed["header"].Get(bases["header"] + playbackPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never playable: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for by, base := range bases {
		var frames atomic.Int64
		gc := &gohlslib.Client{URI: base + playbackPath, HTTPClient: allowed[by]}
		gc.OnTracks = func(tracks []*gohlslib.Track) error {
			for _, tr := range tracks {
				if _, ok := tr.Codec.(*codecs.H264); ok {
					gc.OnDataH26x(tr, func(pts, dts int64, au [][]byte) { frames.Add(1) })
				}
			}
			return nil
		}
		runFor(t, gc, 3*time.Second)
		if frames.Load() == 0 {
			t.Errorf("%s: the allowed viewer received no video", by)
		}
		resp, err := allowed[by].Get(base + playbackPath)
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://a.example" {
			t.Errorf("%s: allowed viewer: %v %v", by, resp, err)
		}
	}
	refused := []struct {
		name, base string
		client     *http.Client
		reason     string
	}{
		{"header: other origin", a.endpoint(), viewer(map[string]string{"Origin": "https://b.example", "CloudFront-Viewer-Country": "NZ"}, lo1), "origin not allowed"},
		{"header: other country", a.endpoint(), viewer(map[string]string{"Origin": "https://a.example", "CloudFront-Viewer-Country": "FR"}, lo1), "country FR not allowed"},
		{"header: none", a.endpoint(), viewer(map[string]string{"Origin": "https://a.example"}, lo1), "viewer country unknown"},
		{"db: other country", e2.endpoint(), viewer(map[string]string{"Origin": "https://a.example"}, lo2), "country FR not allowed"},
		{"db: other origin", e2.endpoint(), viewer(map[string]string{"Origin": "https://b.example"}, lo1), "origin not allowed"},
	}
	for _, r := range refused {
		resp, err := r.client.Get(r.base + playbackPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("X-Glasscast-Reason"), r.reason) {
			t.Errorf("%s: %d %q, want 403 %q", r.name, resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"), r.reason)
		}
	}
}

// viewerToken signs a playback token for viewer on channelARN with key, expiring in 5 minutes
// (IVS refuses tokens with aws:viewer-id that expire more than 10 minutes out).
func viewerToken(t *testing.T, key *ecdsa.PrivateKey, channelARN, viewer string, version int, exp time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{"aws:channel-arn": channelARN, "aws:viewer-id": viewer,
		"aws:viewer-session-version": version, "exp": time.Now().Add(exp).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestViewerSessionRevocation: a private channel watched in hls.js (headless Chromium) by
// alice on serve's edge and on a `glasscast edge`, and by bob on serve's edge.
// StartViewerSessionRevocation for alice stops both of her players with a 403 while bob keeps
// playing; a Go client polling one of alice's session (gc2) URLs on the second edge measures
// how long the revocation took to reach it. After the second edge restarts, alice's old token
// is still refused and a token of a higher session version plays.
func TestViewerSessionRevocation(t *testing.T) {
	needBrowser(t)
	natsAddr, originAddr := freePort(t), freePort(t)
	a := startServe(t, "", "--nats-listen", natsAddr, "--origin-listen", originAddr)
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, a)...)
	e2 := startRole(t, "edge", join...)
	c := a.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, streamKey := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true, Authorized: true})
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if _, err := c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{
		PublicKeyMaterial: aws.String(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))}); err != nil {
		t.Fatal(err)
	}
	publish(t, a.rtmpURL(streamKey), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	playbackPath := strings.TrimPrefix(*ch.PlaybackUrl, a.endpoint())
	alice, bob := viewerToken(t, key, *ch.Arn, "alice", 1, 5*time.Minute), viewerToken(t, key, *ch.Arn, "bob", 1, 5*time.Minute)

	// IVS's rule: a token naming a viewer may not expire more than 10 minutes out.
	resp, err := http.Get(e2.endpoint() + playbackPath + "?token=" + viewerToken(t, key, *ch.Arn, "carol", 1, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("X-Glasscast-Reason"), "10 minutes") {
		t.Errorf("viewer token expiring in 1 h: %d %q, want 403", resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"))
	}

	// Session (gc2) URLs of alice on the second edge, for the Go poller, and of bob on serve's.
	mediaURL, bobMedia := sessionURL(t, ctx, e2.endpoint()+playbackPath, alice), sessionURL(t, ctx, a.endpoint()+playbackPath, bob)

	player := func(n *node, token string) string {
		return n.endpoint() + "/player/?url=" + url.QueryEscape(n.endpoint()+playbackPath) + "&token=" + url.QueryEscape(token)
	}
	var (
		revokedAt   time.Time
		refusedIn   = make(chan time.Duration, 1)
		revokeOnce  sync.Once
		last        [3]playerState
		atRevoke    [3]playerState
		first       [3]*playerState
		playingSeen [3]bool
	)
	revoke := func() {
		// The poller runs before the call, so the first refusal is timed from the call's start.
		pollCtx, stop := context.WithTimeout(ctx, 10*time.Second)
		go func() {
			defer stop()
			for pollCtx.Err() == nil {
				if r, err := http.Get(mediaURL); err == nil {
					r.Body.Close()
					if r.StatusCode == 403 && r.Header.Get("X-Glasscast-Reason") == "viewer session revoked" {
						refusedIn <- time.Since(revokedAt)
						return
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		revokedAt = time.Now()
		if _, err := c.StartViewerSessionRevocation(ctx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Arn,
			ViewerId: aws.String("alice"), ViewerSessionVersionsLessThanOrEqualTo: 1}); err != nil {
			t.Errorf("StartViewerSessionRevocation: %v", err)
		}
	}
	var mu sync.Mutex
	nodeScript(t, func(m map[string]json.RawMessage) {
		raw, ok := m["sample"]
		if !ok {
			return
		}
		var s playerState
		_ = json.Unmarshal(raw, &s)
		mu.Lock()
		defer mu.Unlock()
		last[s.Page] = s
		if first[s.Page] == nil {
			first[s.Page] = &s
		}
		if s.CurrentTime > first[s.Page].CurrentTime+1.5 && !s.Paused { // live: media time starts near the edge
			playingSeen[s.Page] = true
		}
		if playingSeen[0] && playingSeen[1] && playingSeen[2] {
			revokeOnce.Do(func() {
				atRevoke = last
				go revoke()
			})
		}
	}, "viewers.mjs", "40", "12", player(a, alice), player(e2, alice), player(a, bob))

	if revokedAt.IsZero() {
		t.Fatalf("the three players never all played: %+v", last)
	}
	select {
	case d := <-refusedIn:
		t.Logf("StartViewerSessionRevocation to the first refused request on the second edge: %v", d)
		if d > 2*time.Second {
			t.Errorf("revocation took %v to reach the second edge, want <= 2s", d)
		}
	default:
		t.Error("the second edge never refused alice's session URL")
	}
	for i, who := range []string{"alice on serve", "alice on the second edge"} {
		if slices.Contains(atRevoke[i].Codes, 403) || !slices.Contains(last[i].Codes[len(atRevoke[i].Codes):], 403) {
			t.Errorf("%s: hls.js saw no 403 after the revocation (or one before): at the revocation %+v, at the end %+v", who, atRevoke[i], last[i])
		}
	}
	// Bob's bar is low because ffmpeg runs slower than real time on a loaded machine; his
	// session URL still answering is the exact check.
	if slices.Contains(last[2].Codes, 403) || last[2].Fatal || last[2].CurrentTime <= atRevoke[2].CurrentTime {
		t.Errorf("bob stopped playing: at the revocation %+v, at the end %+v", atRevoke[2], last[2])
	}
	for who, u := range map[string]string{"alice": mediaURL, "bob": bobMedia} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[string]int{"alice": 403, "bob": 200}[who]; resp.StatusCode != want {
			t.Errorf("%s's session URL after the revocation: %d %q, want %d", who, resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"), want)
		}
	}
	t.Logf("players at the end: %+v (at the revocation: %v)", last, atRevoke)

	// The revocation is in NATS, not in the edge's memory: it survives a restart.
	e2.restart(false)
	for _, tc := range []struct {
		token  string
		status int
	}{{alice, 403}, {viewerToken(t, key, *ch.Arn, "alice", 2, 5*time.Minute), 200}} {
		resp, err := http.Get(e2.endpoint() + playbackPath + "?token=" + tc.token)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("after the edge restarted: %d %q, want %d", resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"), tc.status)
		}
	}
}

// playerState is one sample of viewers.mjs.
type playerState struct {
	Page        int     `json:"page"`
	CurrentTime float64 `json:"currentTime"`
	Paused      bool    `json:"paused"`
	Codes       []int   `json:"codes"`
	Fatal       bool    `json:"fatal"`
}

// sessionURL fetches the multivariant playlist at playbackURL with token and returns its first
// media playlist URL, which carries the edge's session (gc2) token.
func sessionURL(t *testing.T, ctx context.Context, playbackURL, token string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := httpGet(ctx, playbackURL+"?token="+token)
		for _, l := range strings.Split(string(body), "\n") {
			if err == nil && strings.Contains(l, ".m3u8?") && !strings.HasPrefix(l, "#") {
				if !strings.Contains(l, "token=gc2.") {
					t.Fatalf("media playlist URI without a session token: %s", l)
				}
				base, _ := url.Parse(playbackURL)
				ref, err := url.Parse(l)
				if err != nil {
					t.Fatal(err)
				}
				return base.ResolveReference(ref).String()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no media playlist at %s: %v %s", playbackURL, err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
