package director

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"glasscast/store"
)

// Edge is an edge as the director sees it in the node registry.
type Edge struct {
	Name, Region, Zone string
	URL                string // base URL viewers are sent to
	Load               int64
	UpdatedAt          time.Time
}

// Registry lists the edges that announced themselves. It is the director's one dependency on
// discovery, so its tests need no NATS.
type Registry interface {
	Edges() []Edge
}

// StoreRegistry reads edges from the node registry in the store (store.Nodes).
type StoreRegistry struct{ Store *store.Store }

// Edges returns every node that announced an edge URL.
func (s StoreRegistry) Edges() []Edge {
	var out []Edge
	for _, it := range s.Store.Nodes.List() {
		if n := it.Value; n.EdgeURL != "" {
			out = append(out, Edge{Name: n.Name, Region: n.Region, Zone: n.Zone, URL: strings.TrimSuffix(n.EdgeURL, "/"), Load: n.Load, UpdatedAt: n.UpdatedAt})
		}
	}
	return out
}

// health is what the director learned itself about each edge: probe and fetch failures, and
// viewers it sent since the edge last reported its load (so a burst of joins spreads out
// instead of all going to the edge that was least loaded three seconds ago).
type health struct {
	client *http.Client

	mu   sync.Mutex
	down map[string]bool // by URL: the last probe or fetch failed
	sent map[string]sent
}

type sent struct {
	report time.Time // the load report the count is on top of
	n      int64
}

func newHealth(client *http.Client) *health {
	return &health{client: client, down: map[string]bool{}, sent: map[string]sent{}}
}

func (h *health) markDown(url string, down bool) {
	h.mu.Lock()
	h.down[url] = down
	h.mu.Unlock()
}

// assigned counts a viewer sent to e.
func (h *health) assigned(e Edge) {
	h.mu.Lock()
	s := h.sent[e.URL]
	if !s.report.Equal(e.UpdatedAt) {
		s = sent{report: e.UpdatedAt}
	}
	s.n++
	h.sent[e.URL] = s
	h.mu.Unlock()
}

// rank orders the healthy edges for a viewer in region: that region's edges least loaded
// first, then, only when it has none healthy, every other region's the same way. A stale edge
// (no heartbeat within staleAfter) or one whose last probe failed is left out.
func (h *health) rank(edges []Edge, region string, now time.Time, staleAfter time.Duration) []Edge {
	h.mu.Lock()
	var near, far []Edge
	load := map[string]int64{}
	for _, e := range edges {
		if now.Sub(e.UpdatedAt) >= staleAfter || h.down[e.URL] {
			continue
		}
		load[e.URL] = e.Load
		if s := h.sent[e.URL]; s.report.Equal(e.UpdatedAt) {
			load[e.URL] += s.n
		}
		if e.Region == region {
			near = append(near, e)
		} else {
			far = append(far, e)
		}
	}
	h.mu.Unlock()
	byLoad := func(a, b Edge) int {
		if d := load[a.URL] - load[b.URL]; d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	}
	slices.SortFunc(near, byLoad)
	slices.SortFunc(far, byLoad)
	return append(near, far...)
}

// probeLoop checks every announced edge's /healthz each interval until ctx ends, so an edge
// that died is left out before its heartbeat goes stale, and one that recovers comes back.
func (h *health) probeLoop(ctx context.Context, reg Registry, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, e := range reg.Edges() {
			wg.Add(1)
			go func(url string) {
				defer wg.Done()
				h.markDown(url, h.probe(ctx, url, interval) != nil)
			}(e.URL)
		}
		wg.Wait()
	}
}

func (h *health) probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errStatus(resp.StatusCode)
	}
	return nil
}

type errStatus int

func (e errStatus) Error() string { return "status " + http.StatusText(int(e)) }
