package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"glasscast/media"
)

// Errors a Client returns besides media.ErrNotFound (wrapped as such when the origin lacks a
// rendition, so that errors.Is works as with an in-process origin).
var (
	// ErrUnauthorized: the origin refused the token.
	ErrUnauthorized = errors.New("push: unauthorized")
	// ErrSuperseded: another stream holds the channel at the origin, or this one was closed.
	ErrSuperseded = fmt.Errorf("push: %w", media.ErrSuperseded)
	// ErrRejected: the origin refused the call; retrying it will not help.
	ErrRejected = errors.New("push: rejected")
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the base of the origin's push endpoints, e.g. "http://origin:8080/_push".
	URL string
	// Token is the shared secret the origin's Handler expects.
	Token string
	// HTTPClient sends the requests. Default: a client of its own that keeps connections alive.
	HTTPClient *http.Client
	// Retries is how many times a request that failed for a transient reason (network error,
	// 5xx, 429) is sent again. Default 3; negative disables retries.
	Retries int
	// Timeout bounds each attempt. Default 5 s.
	Timeout time.Duration
	// Backoff is the delay before the first retry, doubled for each next one. Default 50 ms.
	Backoff time.Duration
}

// Client is a media.Sink that publishes to a remote origin.
type Client struct {
	cfg     ClientConfig
	http    *http.Client
	noBatch atomic.Bool // the origin answered that it does not know batches
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) *Client {
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	switch {
	case cfg.Retries == 0:
		cfg.Retries = 3
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 50 * time.Millisecond
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// One connection per rendition publishing in parallel, kept between parts.
		tr.MaxIdleConnsPerHost = 16
		hc = &http.Client{Transport: tr}
	}
	return &Client{cfg: cfg, http: hc}
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Open implements media.Sink.
func (c *Client) Open(ctx context.Context, s media.Stream) (media.Broadcast, error) {
	if err := c.send(ctx, opOpen, &meta{Stream: s}, nil); err != nil {
		return nil, err
	}
	return &remoteBroadcast{c: c, stream: s, inits: make(map[string]remoteInit)}, nil
}

// remoteBroadcast is the media.Broadcast of a Client.
type remoteBroadcast struct {
	c      *Client
	stream media.Stream

	mu    sync.Mutex
	inits map[string]remoteInit // the latest init of each rendition, to restore a restarted origin
}

type remoteInit struct {
	r    media.Rendition
	data []byte
}

// Init implements media.Broadcast.
func (b *remoteBroadcast) Init(ctx context.Context, r media.Rendition, init []byte) error {
	if err := b.c.send(ctx, opInit, &meta{Stream: b.stream, Rendition: &r}, init); err != nil {
		return err
	}
	b.mu.Lock()
	b.inits[r.Name] = remoteInit{r: r, data: init}
	b.mu.Unlock()
	return nil
}

// Part implements media.Broadcast. When the origin does not know the rendition (it restarted
// and reopened the broadcast on its own) the rendition's init is sent again, then the part.
func (b *remoteBroadcast) Part(ctx context.Context, rendition string, p media.Part) error {
	data := p.Data
	p.Data = nil
	m := &meta{Stream: b.stream, Name: rendition, Part: &p}
	err := b.c.send(ctx, opPart, m, data)
	if !errors.Is(err, media.ErrNotFound) {
		return err
	}
	b.mu.Lock()
	in, ok := b.inits[rendition]
	b.mu.Unlock()
	if !ok {
		return err
	}
	if err := b.c.send(ctx, opInit, &meta{Stream: b.stream, Rendition: &in.r}, in.data); err != nil {
		return err
	}
	return b.c.send(ctx, opPart, m, data)
}

// Batch implements media.Batcher: the objects go in one request, one round trip. An origin
// that does not know batches (an older version) gets them one by one from then on.
func (b *remoteBroadcast) Batch(ctx context.Context, objs []media.Object) error {
	if b.c.noBatch.Load() {
		return media.Replay(ctx, b, objs)
	}
	var body []byte
	for i := range objs {
		o := &objs[i]
		m := &meta{Stream: b.stream}
		op, payload := opPart, o.Part.Data
		if o.Init != nil {
			op, payload = opInit, o.InitData
			m.Rendition = o.Init
		} else {
			p := o.Part
			p.Data = nil
			m.Name, m.Part = o.Rendition, &p
		}
		header, err := encodeHeader(m)
		if err != nil {
			return fmt.Errorf("push batch %s: %w", b.stream.ChannelID, err)
		}
		body = appendBatchFrame(body, op, header, payload)
	}
	err := b.c.post(ctx, opBatch, b.stream, body, nil)
	switch {
	case err == nil:
	case errors.Is(err, ErrRejected) && strings.Contains(err.Error(), "unknown operation"):
		b.c.noBatch.Store(true)
		return media.Replay(ctx, b, objs)
	case errors.Is(err, media.ErrNotFound):
		// The origin restarted and lacks a rendition: restore the inits, then the batch
		// again (what it already applied is accepted again as a retry).
		if err := b.restoreInits(ctx); err != nil {
			return err
		}
		err = b.c.post(ctx, opBatch, b.stream, body, nil)
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	for _, o := range objs {
		if o.Init != nil {
			b.inits[o.Init.Name] = remoteInit{r: *o.Init, data: o.InitData}
		}
	}
	b.mu.Unlock()
	return nil
}

func (b *remoteBroadcast) restoreInits(ctx context.Context) error {
	b.mu.Lock()
	inits := make([]remoteInit, 0, len(b.inits))
	for _, in := range b.inits {
		inits = append(inits, in)
	}
	b.mu.Unlock()
	for _, in := range inits {
		if err := b.c.send(ctx, opInit, &meta{Stream: b.stream, Rendition: &in.r}, in.data); err != nil {
			return err
		}
	}
	return nil
}

// Close implements media.Broadcast.
func (b *remoteBroadcast) Close(ctx context.Context) error {
	return b.c.send(ctx, opClose, &meta{Stream: b.stream}, nil)
}

// send POSTs one frame, retrying transient failures with exponential backoff.
func (c *Client) send(ctx context.Context, op string, m *meta, payload []byte) error {
	header, err := encodeHeader(m)
	if err != nil {
		return fmt.Errorf("push %s %s: %w", op, m.Stream.ChannelID, err)
	}
	return c.post(ctx, op, m.Stream, header, payload)
}

// post sends a body (header then payload), retrying transient failures with exponential
// backoff.
func (c *Client) post(ctx context.Context, op string, s media.Stream, header, payload []byte) error {
	delay := c.cfg.Backoff
	for attempt := 0; ; attempt++ {
		retry, err := c.attempt(ctx, op, header, payload)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("push %s %s/%s: %w", op, s.ChannelID, s.StreamID, err)
		if !retry || attempt >= c.cfg.Retries {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay *= 2
	}
}

// attempt sends the frame once and reports whether a failure is worth retrying.
func (c *Client) attempt(ctx context.Context, op string, header, payload []byte) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	body := io.MultiReader(bytes.NewReader(header), bytes.NewReader(payload))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+"/"+op, body)
	if err != nil {
		return false, err
	}
	req.ContentLength = int64(len(header) + len(payload))
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded), err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	// Drain what is left so the connection can carry the next part.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	text := strings.TrimSpace(string(msg))
	switch code := resp.Header.Get(errHeader); {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return false, ErrUnauthorized
	case code == codeNotFound:
		return false, fmt.Errorf("%w: %s", media.ErrNotFound, text)
	case code == codeSuperseded:
		return false, fmt.Errorf("%w: %s", ErrSuperseded, text)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("status %d: %s", resp.StatusCode, text)
	default:
		return false, fmt.Errorf("%w: status %d: %s", ErrRejected, resp.StatusCode, text)
	}
}
