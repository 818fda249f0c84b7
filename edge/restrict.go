package edge

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"

	"glasscast/store"
)

// Playback restriction policies (IVS's CreatePlaybackRestrictionPolicy) on public channels:
//   - allowedCountries applies to every request; the viewer's country comes from a header the
//     CDN or load balancer in front sets (Countries.Header), else from a MaxMind-format database;
//   - allowedOrigins applies to the multivariant playlist, or with
//     enableStrictOriginEnforcement to every request; a checked request must carry an Origin
//     that the policy lists, and its answer's Access-Control-Allow-Origin names that origin;
//   - empty lists and "*" allow everything; private channels ignore policies (tokens rule).
//
// Edges compile the policies when the replicated table changes, never per request.

// Countries tells a viewer's country (ISO 3166-1 alpha-2, upper case).
type Countries struct {
	// Header names a request header carrying the country, trusted as set by the proxy in front.
	Header string
	// DB maps addresses to countries when Header is empty or a request lacks it.
	DB *maxminddb.Reader
}

// OpenCountryDB opens a MaxMind-format database (GeoLite2-Country and compatible).
func OpenCountryDB(path string) (*maxminddb.Reader, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open geolocation database %s: %w", path, err)
	}
	return db, nil
}

// lookup is the country of ip in the database, "" when unknown.
func (c *Countries) lookup(ip string) string {
	if c.DB == nil {
		return ""
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	var iso string
	if err := c.DB.Lookup(addr.Unmap()).DecodePath(&iso, "country", "iso_code"); err != nil {
		return ""
	}
	return strings.ToUpper(iso)
}

// restriction is a compiled playback restriction policy.
type restriction struct {
	countries map[string]bool // nil: any country
	origins   *originSet      // nil: any origin
	strict    bool
}

// originSet is a policy's allowedOrigins prepared for the hit path: exact origins in a map,
// "scheme://*.suffix" wildcards as scheme and ".suffix".
type originSet struct {
	exact     map[string]bool
	wildcards [][2]string
}

func newOriginSet(origins []string) *originSet {
	s := &originSet{exact: map[string]bool{}}
	for _, o := range origins {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if scheme, suffix, ok := strings.Cut(o, "://*."); ok {
			s.wildcards = append(s.wildcards, [2]string{scheme, "." + suffix})
			continue
		}
		s.exact[o] = true
	}
	return s
}

// allows reports whether origin (an Origin header) is in the set; it allocates only for an
// origin not in lower case.
func (s *originSet) allows(origin string) bool {
	if s.exact[origin] {
		return true
	}
	lower := strings.ToLower(origin) // the same string, unallocated, when already lower case
	if lower != origin && s.exact[lower] {
		return true
	}
	scheme, host, ok := strings.Cut(lower, "://")
	if !ok {
		return false
	}
	for _, w := range s.wildcards {
		if w[0] == scheme && strings.HasSuffix(host, w[1]) && len(host) > len(w[1]) {
			return true
		}
	}
	return false
}

// restrictions holds the compiled policies by ARN, swapped whole when the table changes.
type restrictions struct {
	byARN atomic.Pointer[map[string]*restriction]
}

func compile(p store.PlaybackRestrictionPolicy) *restriction {
	r := &restriction{strict: p.EnableStrictOriginEnforcement}
	if len(p.AllowedCountries) > 0 && !contains(p.AllowedCountries, "*") {
		r.countries = make(map[string]bool, len(p.AllowedCountries))
		for _, c := range p.AllowedCountries {
			r.countries[c] = true
		}
	}
	if len(p.AllowedOrigins) > 0 && !contains(p.AllowedOrigins, "*") {
		r.origins = newOriginSet(p.AllowedOrigins)
	}
	return r
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// watch recompiles the policies of t whenever it changes, until ctx ends.
func (rs *restrictions) watch(ctx context.Context, t *store.Table[store.PlaybackRestrictionPolicy], arnOf func(id string) string) {
	for {
		changed := t.Changed()
		m := map[string]*restriction{}
		for _, it := range t.List() {
			m[arnOf(it.Key)] = compile(it.Value)
		}
		rs.byARN.Store(&m)
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

func (rs *restrictions) get(arn string) (*restriction, bool) {
	m := rs.byARN.Load()
	if m == nil {
		return nil, false
	}
	r, ok := (*m)[arn]
	return r, ok
}

// restrict applies a public channel's policy to a request for a path of kind. It returns the
// reason for a refusal, or the Access-Control-Allow-Origin to answer with.
func (e *Edge) restrict(policyARN string, kind pathKind, r *request) (reason, allowOrigin string) {
	p, ok := e.restrictions.get(policyARN)
	if !ok {
		return "playback restriction policy not known to this edge yet", ""
	}
	allowOrigin = "*"
	if p.origins != nil && (p.strict || kind == multivariantPath) {
		switch {
		case r.origin == "":
			return "playback restriction policy: request has no Origin header", ""
		case !p.origins.allows(r.origin):
			return "playback restriction policy: origin not allowed", ""
		}
		allowOrigin = r.origin
	}
	if p.countries != nil {
		country := r.country
		if country == "" {
			country = e.countries.lookup(r.ip())
		}
		if !p.countries[country] {
			up := strings.ToUpper(country)
			switch {
			case len(up) != 2 || up[0] < 'A' || up[0] > 'Z' || up[1] < 'A' || up[1] > 'Z':
				return "playback restriction policy: viewer country unknown", ""
			case !p.countries[up]:
				return "playback restriction policy: country " + up + " not allowed", ""
			}
		}
	}
	return "", allowOrigin
}
