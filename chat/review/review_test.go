package review

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReview(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch req.Content {
		case "deny":
			_, _ = w.Write([]byte(`{"ReviewResult":"DENY","Attributes":{"Reason":"nope"}}`))
		case "edit":
			_, _ = w.Write([]byte(`{"ReviewResult":"ALLOW","Content":"edited","Attributes":{"x":"y"}}`))
		case "slow":
			time.Sleep(2 * Timeout)
			_, _ = w.Write([]byte(`{"ReviewResult":"ALLOW"}`))
		case "garbage":
			_, _ = w.Write([]byte(`{"ReviewResult":"MAYBE"}`))
		case "500":
			w.WriteHeader(500)
		default:
			_, _ = w.Write([]byte(`{"ReviewResult":"ALLOW"}`))
		}
	}))
	defer srv.Close()
	lambda := "arn:aws:lambda:us-east-1:123456789012:function:review"
	rv := &Reviewer{Targets: map[string]string{lambda: srv.URL}}
	ctx := context.Background()
	in := func(c string) Request { return Request{Content: c, Attributes: map[string]string{"a": "b"}} }

	if r := rv.Review(ctx, lambda, "ALLOW", in("deny")); r.Allow || r.Reason != "nope" || r.Fallback != nil {
		t.Fatalf("deny: %+v", r)
	}
	if r := rv.Review(ctx, srv.URL, "DENY", in("edit")); !r.Allow || r.Content != "edited" || r.Attributes["x"] != "y" {
		t.Fatalf("edit: %+v", r)
	}
	if r := rv.Review(ctx, lambda, "DENY", in("fine")); !r.Allow || r.Content != "fine" || r.Attributes["a"] != "b" {
		t.Fatalf("allow as is: %+v", r)
	}
	start := time.Now()
	r := rv.Review(ctx, lambda, "DENY", in("slow"))
	if r.Allow || r.Fallback == nil || time.Since(start) > 5*Timeout {
		t.Fatalf("slow handler: %+v after %v", r, time.Since(start))
	}
	for _, c := range []string{"garbage", "500"} {
		if r := rv.Review(ctx, lambda, "ALLOW", in(c)); !r.Allow || r.Fallback == nil || r.Content != c {
			t.Fatalf("%s: %+v", c, r)
		}
	}
	if r := rv.Review(ctx, "arn:aws:lambda:us-east-1:123456789012:function:unmapped", "DENY", in("x")); r.Allow || r.Fallback == nil {
		t.Fatalf("unmapped handler: %+v", r)
	}
}

// TestReviewRefusesRedirect: an https handler that redirects (here to an internal http
// address, which the API would never accept as a handler) has failed; the message is not
// posted to where it points, and the fallback result applies.
func TestReviewRefusesRedirect(t *testing.T) {
	var internal atomic.Int32
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internal.Add(1)
		_, _ = w.Write([]byte(`{"ReviewResult":"ALLOW","Content":"via the internal address"}`))
	}))
	defer inner.Close()
	outer := httptest.NewTLSServer(http.RedirectHandler(inner.URL+"/admin", http.StatusTemporaryRedirect))
	defer outer.Close()
	rv := &Reviewer{Client: outer.Client()}
	r := rv.Review(context.Background(), outer.URL, "DENY", Request{Content: "hello"})
	if r.Allow || r.Fallback == nil {
		t.Fatalf("redirecting handler: %+v", r)
	}
	if n := internal.Load(); n != 0 {
		t.Fatalf("the review was posted to the redirect's target %d times", n)
	}
}

// TestReviewErrorRedactsURL: a failing handler's error, which the relay logs, names the handler
// without its query or user info, which may carry a token.
func TestReviewErrorRedactsURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the call fails with a *url.Error
	lambda := "arn:aws:lambda:us-east-1:123456789012:function:review"
	for _, target := range []string{"http://" + addr + "/hook?token=s3cret", "http://user:s3cret@" + addr + "/hook", "http://" + addr + "/hook#s3cret", "http://[::1%s3cret"} {
		rv := &Reviewer{Targets: map[string]string{lambda: target}}
		r := rv.Review(context.Background(), lambda, "ALLOW", Request{Content: "x"})
		if r.Fallback == nil {
			t.Fatalf("%s: no failure", target)
		}
		msg := r.Fallback.Error()
		if strings.Contains(msg, "s3cret") {
			t.Errorf("the error names the secret: %s", msg)
		}
		if strings.Contains(target, "/hook") && !strings.Contains(msg, "http://"+addr+"/hook") {
			t.Errorf("the error does not name the handler: %s", msg)
		}
	}
}
