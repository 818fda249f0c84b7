// Package review calls a room's message review handler: it POSTs IVS Chat's review payload to a
// webhook (where IVS would invoke a Lambda function) and reads ALLOW or DENY back. An error, a
// redirect, an answer it cannot read, or no answer within 200 ms yields the room's fallback
// result.
package review

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"glasscast/redact"
)

// Timeout is IVS Chat's fixed limit on a review.
const Timeout = 200 * time.Millisecond

// Request is the payload a handler receives.
type Request struct {
	Content    string            `json:"Content"`
	MessageId  string            `json:"MessageId"`
	RoomArn    string            `json:"RoomArn"`
	Attributes map[string]string `json:"Attributes"`
	Sender     Sender            `json:"Sender"`
}

// Sender is the user whose message is reviewed.
type Sender struct {
	Attributes map[string]string `json:"Attributes"`
	UserId     string            `json:"UserId"`
	Ip         string            `json:"Ip"`
}

// Result is the outcome of a review. On ALLOW, Content and Attributes are what to deliver.
type Result struct {
	Allow      bool
	Content    string
	Attributes map[string]string
	// Reason is the handler's Attributes.Reason on DENY, sent to the sender in the 406 error.
	Reason string
	// Fallback says the handler did not answer usably and the fallback result was applied.
	Fallback error
}

// Reviewer calls handlers. It never follows a redirect: the API accepts a handler URL only if
// it is https or on the loopback interface, and a redirect, carrying the message with it, could
// lead anywhere else (an internal http address); a handler that redirects has failed.
type Reviewer struct {
	// Targets maps a handler URI (a Lambda function ARN) to the webhook URL that stands in for it.
	// URIs that are URLs themselves are called directly.
	Targets map[string]string
	Client  *http.Client // its CheckRedirect is ignored
}

// URL returns where the handler uri is reached, or "" if nowhere.
func (r *Reviewer) URL(uri string) string {
	if u, ok := r.Targets[uri]; ok {
		return u
	}
	if strings.HasPrefix(uri, "https://") || strings.HasPrefix(uri, "http://") {
		return uri
	}
	return ""
}

// Review asks the handler at uri about req, never taking longer than Timeout.
func (r *Reviewer) Review(ctx context.Context, uri, fallback string, req Request) Result {
	res, err := r.call(ctx, uri, req)
	if err != nil {
		return Result{Allow: fallback != "DENY", Content: req.Content, Attributes: req.Attributes, Fallback: err}
	}
	return res
}

func (r *Reviewer) call(ctx context.Context, uri string, req Request) (Result, error) {
	target := r.URL(uri)
	if target == "" {
		return Result{}, fmt.Errorf("no webhook is configured for review handler %s", uri)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("review request: %w", redact.Err(err, "review handler URL"))
	}
	hr.Header.Set("Content-Type", "application/json")
	var client http.Client
	if r.Client != nil {
		client = *r.Client
	}
	// The redirect itself is the answer, and not a 2xx one.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(hr)
	if err != nil {
		return Result{}, fmt.Errorf("review handler: %w", redact.Err(err, "review handler URL"))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Result{}, fmt.Errorf("review handler answered %s", resp.Status)
	}
	var out struct {
		ReviewResult string
		Content      *string
		Attributes   map[string]string
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return Result{}, fmt.Errorf("review handler answer: %w", err)
	}
	switch out.ReviewResult {
	case "ALLOW":
		res := Result{Allow: true, Content: req.Content, Attributes: req.Attributes}
		if out.Content != nil {
			res.Content = *out.Content
		}
		if out.Attributes != nil {
			res.Attributes = out.Attributes
		}
		return res, nil
	case "DENY":
		return Result{Reason: out.Attributes["Reason"]}, nil
	}
	return Result{}, fmt.Errorf("review handler answered ReviewResult %q", out.ReviewResult)
}
