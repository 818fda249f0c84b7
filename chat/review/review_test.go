package review

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
