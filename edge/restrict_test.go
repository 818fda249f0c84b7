package edge

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/valyala/fasthttp"

	"glasscast/store"
)

const countryHeader = "CloudFront-Viewer-Country"

// writeCountryDB writes a MaxMind-format country database mapping each CIDR to a country,
// with MaxMind's own writer, so the reader is tested against the real format.
func writeCountryDB(t testing.TB, nets map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, iso := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(iso)}}); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "country.mmdb")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func policyARN(id string) string {
	return fmt.Sprintf("arn:aws:ivs:%s:%s:playback-restriction-policy/%s", region, account, id)
}

// attachPolicy stores p and points channel at it, then waits until the edge compiled it.
func (r *rig) attachPolicy(channel string, p store.PlaybackRestrictionPolicy) {
	r.t.Helper()
	ctx := context.Background()
	if err := r.store.PlaybackPolicies.Put(ctx, p.ID, p); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.store.Channels.Update(ctx, channel, func(c *store.Channel) error {
		c.PlaybackRestrictionPolicyArn = policyARN(p.ID)
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	waitFor(r.t, "the edge to compile the policy", func() bool {
		got, ok := r.edge.restrictions.get(policyARN(p.ID))
		return ok && got.strict == p.EnableStrictOriginEnforcement && len(got.countries) == len(p.AllowedCountries)
	})
}

func TestRestrictionPolicyHeader(t *testing.T) {
	r := newRig(t, Config{Countries: Countries{Header: countryHeader}}, "test")
	r.publish("test", 2)
	r.attachPolicy("test", store.PlaybackRestrictionPolicy{ID: "p1", AllowedOrigins: []string{"https://a.example"}, AllowedCountries: []string{"NZ"}})
	mv, part := path("test", ""), path("test", "720p/part100.1.m4s")
	cases := []struct {
		name, uri, origin, country string
		status                     int
		acao, reason               string
	}{
		{"allowed origin and country", mv, "https://a.example", "NZ", 200, "https://a.example", ""},
		{"other origin", mv, "https://b.example", "NZ", 403, "*", "playback restriction policy: origin not allowed"},
		{"no origin on the multivariant", mv, "", "NZ", 403, "*", "playback restriction policy: request has no Origin header"},
		{"other country", mv, "https://a.example", "FR", 403, "*", "playback restriction policy: country FR not allowed"},
		{"no country", mv, "https://a.example", "", 403, "*", "playback restriction policy: viewer country unknown"},
		{"part without origin, not strict", part, "", "NZ", 200, "*", ""},
		{"part from another country", part, "https://a.example", "FR", 403, "*", "playback restriction policy: country FR not allowed"},
	}
	for _, c := range cases {
		for _, base := range []string{r.http, r.fast} {
			resp, _ := get(t, base+c.uri, "Origin", c.origin, countryHeader, c.country)
			if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != c.acao || resp.Header.Get("X-Glasscast-Reason") != c.reason {
				t.Errorf("%s (%s): %d ACAO %q reason %q, want %d %q %q", c.name, base, resp.StatusCode,
					resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("X-Glasscast-Reason"), c.status, c.acao, c.reason)
			}
		}
	}
	// Strict enforcement checks every request.
	r.attachPolicy("test", store.PlaybackRestrictionPolicy{ID: "p1", AllowedOrigins: []string{"https://*.example"}, AllowedCountries: []string{"NZ"}, EnableStrictOriginEnforcement: true})
	if resp, _ := get(t, r.fast+part, countryHeader, "NZ"); resp.StatusCode != 403 {
		t.Errorf("strict: part without Origin: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(t, r.fast+part, "Origin", "https://b.example", countryHeader, "NZ"); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://b.example" {
		t.Errorf("strict: part from a matching origin: %d ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// Private channels ignore policies.
	if _, err := r.store.Channels.Update(context.Background(), "test", func(c *store.Channel) error { c.Authorized = true; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "private", func() bool { c, _ := r.store.Channels.Get("test"); return c.Authorized })
	if resp, _ := get(t, r.fast+mv, "Origin", "https://a.example", countryHeader, "NZ"); resp.Header.Get("X-Glasscast-Reason") != "missing playback token" {
		t.Errorf("private channel: reason %q, want the token's", resp.Header.Get("X-Glasscast-Reason"))
	}
}

func TestRestrictionPolicyDatabase(t *testing.T) {
	db, err := OpenCountryDB(writeCountryDB(t, map[string]string{"127.0.0.1/32": "NZ", "127.0.0.2/32": "FR"}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := newRig(t, Config{Countries: Countries{DB: db}}, "test")
	r.publish("test", 2)
	r.attachPolicy("test", store.PlaybackRestrictionPolicy{ID: "p1", AllowedCountries: []string{"NZ"}})
	mv := path("test", "")
	if resp, _ := get(t, r.fast+mv); resp.StatusCode != 200 {
		t.Errorf("from 127.0.0.1 (NZ): %d %s", resp.StatusCode, resp.Header.Get("X-Glasscast-Reason"))
	}
	// 127.0.0.2 is FR in the database.
	c := &fasthttp.Client{Dial: func(addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.Dial("tcp", addr)
	}}
	status, _, err := c.Get(nil, r.fast+mv)
	if err != nil || status != 403 {
		t.Errorf("from 127.0.0.2 (FR): %d %v, want 403", status, err)
	}
}

// BenchmarkEdgeHitPolicy compares the hit path of a part with no policy and with a policy
// restricting origins and countries (by header), in alternating rounds (none, policy, none...).
func BenchmarkEdgeHitPolicy(b *testing.B) {
	r := newRig(b, Config{Countries: Countries{Header: countryHeader}}, "test")
	r.publish("test", 2)
	part := path("test", "720p/part100.1.m4s")
	p := store.PlaybackRestrictionPolicy{ID: "p1", AllowedOrigins: []string{"https://a.example"}, AllowedCountries: []string{"NZ", "FR", "DE"}}
	// Rounds alternate inside one run, so that load from other processes falls on both alike.
	for i := 0; i < 6; i++ {
		name := []string{"none", "policy"}[i%2]
		if name == "policy" {
			r.attachPolicy("test", p)
		} else if _, err := r.store.Channels.Update(context.Background(), "test", func(c *store.Channel) error { c.PlaybackRestrictionPolicyArn = ""; return nil }); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "channel", func() bool {
			c, _ := r.store.Channels.Get("test")
			return (c.PlaybackRestrictionPolicyArn != "") == (name == "policy")
		})
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.SetRequestURI(part)
					ctx.Request.Header.Set("Origin", "https://a.example")
					ctx.Request.Header.Set(countryHeader, "DE")
					r.edge.ServeFastHTTP(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatal(ctx.Response.StatusCode())
					}
				}
			})
		})
	}
}

// BenchmarkRestrict is the policy check alone, the whole of what a policy adds to a hit.
func BenchmarkRestrict(b *testing.B) {
	r := newRig(b, Config{Countries: Countries{Header: countryHeader}}, "test")
	r.attachPolicy("test", store.PlaybackRestrictionPolicy{ID: "p1", AllowedOrigins: []string{"https://a.example", "https://*.b.example"},
		AllowedCountries: []string{"NZ", "FR", "DE"}, EnableStrictOriginEnforcement: true})
	r.attachPolicy("test", store.PlaybackRestrictionPolicy{ID: "p2", AllowedOrigins: []string{"https://a.example"}, AllowedCountries: []string{"NZ", "FR", "DE"}})
	for _, c := range []struct {
		name, policy string
		req          request
	}{
		{"strict-wildcard", "p1", request{origin: "https://x.b.example", country: "DE", addr: "127.0.0.1", userAgent: "test"}},
		{"part", "p2", request{origin: "https://a.example", country: "DE", addr: "127.0.0.1", userAgent: "test"}},
	} {
		arn := policyARN(c.policy)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if reason, _ := r.edge.restrict(arn, objectPath, &c.req); reason != "" {
					b.Fatal(reason)
				}
			}
		})
	}
}

// TestViewerRevocation: a revocation in the replicated table refuses the viewer's JWT and the
// session and object tokens derived from it, up to the revoked version, and no one else.
func TestViewerRevocation(t *testing.T) {
	r := newRig(t, Config{}, "privA")
	r.publish("privA", 2)
	key := importKey(t, r.store, "key1")
	tok := func(viewer string, version int) string {
		return sign(t, key, jwt.MapClaims{"aws:channel-arn": channelARN("privA"), "aws:viewer-id": viewer,
			"aws:viewer-session-version": version, "exp": time.Now().Add(5 * time.Minute).Unix()})
	}
	mv := path("privA", "")
	media := func(tok string) string { return r.http + path("privA", "720p/index.m3u8?token="+url.QueryEscape(tok)) }
	open := func(jwt string) (sess, obj string) {
		resp, body := get(t, r.http+mv+"?token="+jwt)
		wantStatus(t, "multivariant", resp, 200, "")
		sess = childToken(t, body)
		resp, body = get(t, media(sess))
		wantStatus(t, "media playlist", resp, 200, "")
		return sess, childToken(t, body)
	}
	alice, bob := tok("alice", 3), tok("bob", 3)
	aSess, aObj := open(alice)
	bSess, _ := open(bob)
	m := reHint.FindStringSubmatch(string(func() []byte { _, b := get(t, media(aSess)); return b }()))
	part := func(tok string) string {
		return r.http + path("privA", "720p/part"+m[1]+".0.m4s?token="+url.QueryEscape(tok))
	}

	if err := r.store.Revocations.Put(context.Background(), store.RevocationKey("privA", "alice"), 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation", func() bool { _, ok := r.store.Revocations.Get(store.RevocationKey("privA", "alice")); return ok })
	for name, u := range map[string]string{"JWT": r.http + mv + "?token=" + alice, "session token": media(aSess), "object token": part(aObj)} {
		resp, _ := get(t, u)
		wantStatus(t, "alice's "+name, resp, 403, "viewer session revoked")
	}
	resp, _ := get(t, media(bSess))
	wantStatus(t, "bob's session", resp, 200, "")
	resp, _ = get(t, r.http+mv+"?token="+tok("alice", 4))
	wantStatus(t, "alice's next session version", resp, 200, "")
}

// FuzzOriginSet checks the compiled origin set against originAllowed, the rule tokens use.
func FuzzOriginSet(f *testing.F) {
	for _, o := range []string{"https://a.example", "HTTPS://A.EXAMPLE", "https://x.b.example", "http://x.b.example", "https://b.example", "", "://", "https://a.example:8443"} {
		f.Add(o)
	}
	list := []string{"https://a.example", "https://*.b.example", "http://c.example:8080/"}
	set := newOriginSet(list)
	f.Fuzz(func(t *testing.T, origin string) {
		if got, want := set.allows(origin), originAllowed(strings.Join(list, ","), origin); got != want {
			t.Fatalf("origin %q: set says %v, originAllowed %v", origin, got, want)
		}
	})
}
