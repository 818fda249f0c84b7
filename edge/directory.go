package edge

import (
	"slices"
	"strings"
	"time"

	"glasscast/store"
)

// Directory tells an edge where a channel's objects come from: the base URLs of origins or
// shield edges that hold it, in the order to try them. It is the edge's only dependency for
// discovery, so a new discovery method is one implementation and edge tests run without NATS.
// The edge adds health on top (breaker.go): an upstream that failed is skipped while others
// answer.
type Directory interface {
	// Upstreams lists the base URLs that hold channelID, best first. None means no upstream
	// holds the channel: it is offline, and viewers get 404.
	Upstreams(channelID string) []string
}

// Static is a fixed failover list (edge.upstream): every channel, in the configured order.
type Static []string

// Upstreams returns the list whatever the channel.
func (s Static) Upstreams(string) []string { return s }

// ParseStatic reads a comma-separated list of base URLs.
func ParseStatic(list string) Static {
	var s Static
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSuffix(strings.TrimSpace(u), "/"); u != "" {
			s = append(s, u)
		}
	}
	return s
}

// Place is where a node runs.
type Place struct{ Region, Zone string }

// LiveOrigins finds a channel's origins in its live registration (watched, never looked up per
// request) and orders them nearest first by the node registry, so an edge in region B tries
// region B's origin first although the ingest listed region A's first.
type LiveOrigins struct {
	Store *store.Store
	Here  Place
}

// Upstreams returns the channel's origins, nearest first.
func (d LiveOrigins) Upstreams(channelID string) []string {
	l, ok := d.Store.Live.Get(channelID)
	if !ok || len(l.Origins) == 0 {
		return nil
	}
	now := time.Now()
	places := map[string]Place{}
	for _, it := range d.Store.Nodes.List() {
		if n := it.Value; n.OriginURL != "" && n.Fresh(now) {
			places[strings.TrimSuffix(n.OriginURL, "/")] = Place{n.Region, n.Zone}
		}
	}
	return Nearest(l.Origins, places, d.Here)
}

// Nearest orders bases: same region and zone first, then same region, then the rest; an
// origin the registry does not place counts as another region. Within a rank the given order
// (the ingest's) stands, so every edge of a region agrees on its first choice.
func Nearest(bases []string, places map[string]Place, here Place) []string {
	rank := func(base string) int {
		p, ok := places[strings.TrimSuffix(base, "/")]
		switch {
		case !ok || here.Region == "" || p.Region != here.Region:
			return 2
		case here.Zone != "" && p.Zone == here.Zone:
			return 0
		}
		return 1
	}
	out := make([]string, len(bases))
	for i, b := range bases {
		out[i] = strings.TrimSuffix(b, "/")
	}
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}
