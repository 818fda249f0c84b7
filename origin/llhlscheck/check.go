// Package llhlscheck checks an LL-HLS stream over HTTP against the server rows of
// reference/llhls.md (P1–P19, D1–D13). It needs only a multivariant playlist URL and an HTTP
// client, so the same checklist runs against an origin in a unit test and against a real
// encoder's stream through edges in an end-to-end test.
package llhlscheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotApplicable is returned (wrapped) by a check that cannot run against the target: a
// NORMAL-latency stream for part rows, or a hook the check needs is missing.
var ErrNotApplicable = errors.New("not applicable")

// Target is the stream under test.
type Target struct {
	// Client fetches everything; default http.DefaultClient.
	Client *http.Client
	// URL is the multivariant playlist URL, with any query (a token) players would use.
	URL string
	// Tolerance is added to every timing bound for network and scheduling jitter.
	// Default 100 ms.
	Tolerance time.Duration
	// Stall stops new parts without ending the broadcast (a publisher that freezes); the
	// returned func restarts them. Needed by D8.
	Stall func(ctx context.Context) (resume func(ctx context.Context) error, err error)
	// End ends the broadcast. Needed by D5, which therefore runs last.
	End func(ctx context.Context) error
	// VariableFrameRate says the source's frame rate drifts (a browser's camera under load):
	// P2 then allows a part under 85 % of PART-TARGET when the frame after it would have
	// carried it past PART-TARGET, as whole frames may then leave no legal cut.
	VariableFrameRate bool
}

// Phase orders checks that disturb the stream after those that only watch it.
type Phase int

// Phases, in the order they must run.
const (
	// Live checks only read the stream; they may run concurrently.
	Live Phase = iota
	// Stalling checks pause the publisher, and resume it before they return.
	Stalling
	// Ending checks end the broadcast.
	Ending
)

// Check is one checklist row.
type Check struct {
	ID    string // "P1" ... "D13"
	Title string
	Phase Phase
	Run   func(ctx context.Context, t *Target) error
}

// Checks lists every row in checklist order.
func Checks() []Check {
	return append(playlistChecks(), directiveChecks()...)
}

// Lookup finds a check by ID.
func Lookup(id string) (Check, bool) {
	for _, c := range Checks() {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

func (t *Target) client() *http.Client {
	if t.Client != nil {
		return t.Client
	}
	return http.DefaultClient
}

func (t *Target) tol() time.Duration {
	if t.Tolerance > 0 {
		return t.Tolerance
	}
	return 100 * time.Millisecond
}

// Response is a fetched resource with its timing.
type Response struct {
	URL        string
	Status     int
	Header     http.Header
	Body       []byte
	Start      time.Time
	FirstByte  time.Duration // until the response headers
	LastByte   time.Duration // until the end of the body
	Compressed bool          // the body arrived gzip-encoded and was decoded
}

// get fetches u. Extra headers come in name, value pairs.
func (t *Target) get(ctx context.Context, u string, header ...string) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := t.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	first := time.Since(start)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: body: %w", u, err)
	}
	return &Response{
		URL: u, Status: resp.StatusCode, Header: resp.Header, Body: body,
		Start: start, FirstByte: first, LastByte: time.Since(start),
		Compressed: resp.Uncompressed,
	}, nil
}

// getOK fetches u and requires 200.
func (t *Target) getOK(ctx context.Context, u string) (*Response, error) {
	r, err := t.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return r, fmt.Errorf("GET %s: status %d: %s", u, r.Status, strings.TrimSpace(string(r.Body)))
	}
	return r, nil
}

// multivariant fetches the multivariant playlist and resolves its variant URIs.
func (t *Target) multivariant(ctx context.Context) (*Multivariant, []string, error) {
	r, err := t.getOK(ctx, t.URL)
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseMultivariant(r.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("multivariant: %w", err)
	}
	if len(m.Variants) == 0 {
		return nil, nil, errors.New("multivariant lists no variant")
	}
	urls := make([]string, len(m.Variants))
	for i, v := range m.Variants {
		if urls[i], err = resolve(t.URL, v.URI); err != nil {
			return nil, nil, err
		}
	}
	return m, urls, nil
}

// mediaURL is the first (highest) variant's media playlist URL.
func (t *Target) mediaURL(ctx context.Context) (string, error) {
	_, urls, err := t.multivariant(ctx)
	if err != nil {
		return "", err
	}
	return urls[0], nil
}

// load fetches a media playlist, with directives ("_HLS_msn=3&_HLS_part=1") added to its query.
func (t *Target) load(ctx context.Context, u, directives string) (*MediaPlaylist, *Response, error) {
	r, err := t.getOK(ctx, withQuery(u, directives))
	if err != nil {
		return nil, r, err
	}
	pl, err := ParseMedia(r.Body)
	if err != nil {
		return nil, r, fmt.Errorf("%s: %w", r.URL, err)
	}
	return pl, r, nil
}

// next blocks until the part after pl's last part exists and returns that playlist: the
// blocking reload every LL-HLS client makes.
func (t *Target) next(ctx context.Context, u string, pl *MediaPlaylist) (*MediaPlaylist, *Response, error) {
	last, ok := pl.LastPart()
	if !ok {
		return nil, nil, fmt.Errorf("%w: playlist lists no part", ErrNotApplicable)
	}
	return t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", last.MSN, last.Index+1))
}

// resolve resolves ref against base.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("URI %q: %w", ref, err)
	}
	return b.ResolveReference(r).String(), nil
}

// withQuery appends raw query parameters to u.
func withQuery(u, extra string) string {
	if extra == "" {
		return u
	}
	if strings.Contains(u, "?") {
		return u + "&" + extra
	}
	return u + "?" + extra
}

// lowLatency loads the first variant and fails with ErrNotApplicable unless it lists parts.
func (t *Target) lowLatency(ctx context.Context) (string, *MediaPlaylist, error) {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return "", nil, err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return "", nil, err
	}
	if !pl.HasPartInf || len(pl.Parts()) == 0 {
		return "", nil, fmt.Errorf("%w: no EXT-X-PART (not a low-latency stream)", ErrNotApplicable)
	}
	return u, pl, nil
}

// within reports whether d <= limit, formatting a failure.
func within(what string, d, limit time.Duration) error {
	if d > limit {
		return fmt.Errorf("%s took %v, limit %v", what, d.Round(time.Millisecond), limit.Round(time.Millisecond))
	}
	return nil
}

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
