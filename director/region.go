package director

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Locator tells a viewer's region from its request: a header set by a trusted load balancer or
// GeoDNS front (a country code mapped to a region, or a region label as is), else the client
// address in a CIDR table, else the default.
type Locator struct {
	header    string
	countries map[string]string // upper-case country code -> region
	cidrs     []cidrRegion      // longest prefix first
	fallback  string
}

type cidrRegion struct {
	prefix netip.Prefix
	region string
}

// NewLocator parses director.cidrRegions ("10.1.0.0/16=eu-west,127.0.0.2/32=b") and
// director.countryRegions ("DE=eu-west,US=us-east"); header names the trusted header (empty:
// none) and fallback is the region of viewers nothing places.
func NewLocator(cidrRegions, header, countryRegions, fallback string) (*Locator, error) {
	l := &Locator{header: header, countries: map[string]string{}, fallback: fallback}
	pairs, err := parsePairs(cidrRegions)
	if err != nil {
		return nil, fmt.Errorf("director.cidrRegions: %w", err)
	}
	for _, p := range pairs {
		prefix, err := netip.ParsePrefix(p[0])
		if err != nil {
			return nil, fmt.Errorf("director.cidrRegions: %w", err)
		}
		l.cidrs = append(l.cidrs, cidrRegion{prefix.Masked(), p[1]})
	}
	// Most specific first, so "10.1.2.0/24=x" wins over "10.0.0.0/8=y" whatever the order given.
	for i := 1; i < len(l.cidrs); i++ {
		for j := i; j > 0 && l.cidrs[j].prefix.Bits() > l.cidrs[j-1].prefix.Bits(); j-- {
			l.cidrs[j], l.cidrs[j-1] = l.cidrs[j-1], l.cidrs[j]
		}
	}
	if pairs, err = parsePairs(countryRegions); err != nil {
		return nil, fmt.Errorf("director.countryRegions: %w", err)
	}
	for _, p := range pairs {
		l.countries[strings.ToUpper(p[0])] = p[1]
	}
	return l, nil
}

// parsePairs reads "k=v,k=v"; empty input is no pairs.
func parsePairs(s string) ([][2]string, error) {
	var out [][2]string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not key=region", f)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// Region returns the viewer's region. The header is trusted only because the operator named
// it: a director reachable directly should leave regionHeader empty and use the CIDR table.
func (l *Locator) Region(r *http.Request) string {
	if l.header != "" {
		if v := strings.TrimSpace(r.Header.Get(l.header)); v != "" {
			if region, ok := l.countries[strings.ToUpper(v)]; ok {
				return region
			}
			return v // a front that sends region labels directly
		}
	}
	if len(l.cidrs) > 0 {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			ip = ip.Unmap()
			for _, c := range l.cidrs {
				if c.prefix.Contains(ip) {
					return c.region
				}
			}
		}
	}
	return l.fallback
}
