package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	akid   = "AKGCTESTTESTTESTTEST"
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func verifier(now time.Time) *SigV4Verifier {
	return &SigV4Verifier{
		Secret: func(id string) (string, bool) { return secret, id == akid },
		Now:    func() time.Time { return now },
		Region: "us-east-1",
	}
}

// signed builds a request as the AWS SDK's own signer signs it, then receives it through a
// real HTTP server so the verifier sees what a server sees (Host promoted, headers canonical).
func signed(t *testing.T, method, target string, body []byte, at time.Time, service string, mutate func(*http.Request)) (*http.Request, []byte) {
	t.Helper()
	return signedIn(t, method, target, body, at, "us-east-1", service, mutate)
}

func signedIn(t *testing.T, method, target string, body []byte, at time.Time, region, service string, mutate func(*http.Request)) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:8080"+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Custom", "  a   b  ")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, region, at)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req)
	}
	var got *http.Request
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		buf := new(bytes.Buffer)
		_, _ = buf.ReadFrom(r.Body)
		gotBody = buf.Bytes()
	}))
	defer srv.Close()
	req.URL.Host = srv.Listener.Addr().String()
	// The signature covered host 127.0.0.1:8080; keep that Host header on the wire.
	req.Host = "127.0.0.1:8080"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return got, gotBody
}

func TestSigV4AcceptsSDKSignatures(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct{ method, target string }{
		{"POST", "/CreateChannel"},
		// ARNs in paths arrive percent-encoded and are signed double-encoded.
		{"POST", "/tags/arn%3Aaws%3Aivs%3Aus-east-1%3A000000000000%3Achannel%2FabcdEFGH1234"},
		{"DELETE", "/tags/arn%3Aaws%3Aivs%3Aus-east-1%3A000000000000%3Achannel%2Fabc?tagKeys=b%20c&tagKeys=a"},
		{"GET", "/tags/x?z=1&a=%2F&a=%2A"},
	}
	for _, c := range cases {
		r, body := signed(t, c.method, c.target, []byte(`{"name":"x"}`), now, "ivs", nil)
		id, err := verifier(now).Verify(r, body)
		if err != nil {
			t.Errorf("%s %s: %v", c.method, c.target, err)
			continue
		}
		if id.Service != "ivs" || id.Region != "us-east-1" || id.AccessKeyID != akid {
			t.Errorf("identity %+v", id)
		}
	}
}

func TestSigV4Refusals(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"arn":"x"}`)
	cases := []struct {
		name   string
		at     time.Time
		mutate func(*http.Request)
		body   []byte
		code   string
	}{
		{"missing", now, func(r *http.Request) { r.Header.Del("Authorization") }, body, "MissingAuthenticationTokenException"},
		{"garbage", now, func(r *http.Request) { r.Header.Set("Authorization", "Basic Zm9vOmJhcg==") }, body, "IncompleteSignatureException"},
		{"tampered body", now, nil, []byte(`{"arn":"y"}`), "InvalidSignatureException"},
		{"tampered header", now, func(r *http.Request) { r.Header.Set("X-Custom", "other") }, body, "InvalidSignatureException"},
		{"stale", now.Add(-20 * time.Minute), nil, body, "InvalidSignatureException"},
		{"unknown key", now, func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKGCUNKNOWN/20261125/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
		}, body, "UnrecognizedClientException"},
	}
	for _, c := range cases {
		r, got := signed(t, "POST", "/GetChannel", body, c.at, "ivs", c.mutate)
		if c.body != nil {
			got = c.body
		}
		_, err := verifier(now).Verify(r, got)
		var se *SigV4Error
		if !errors.As(err, &se) || se.Code != c.code {
			t.Errorf("%s: got %v, want %s", c.name, err, c.code)
		}
	}
}

// The credential scope must name the deployment's region and the operation's service, and the
// request time must be within AWS's 5 minutes, with AWS's codes and wording.
func TestSigV4Scope(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	body := []byte(`{}`)
	cases := []struct {
		name            string
		at              time.Time
		region, service string
		services        []string
		message         string // "" accepts
	}{
		{"scoped right", now, "us-east-1", "ivs", []string{"ivs"}, ""},
		{"one of the services", now, "us-east-1", "ivschat", []string{"ivs", "ivschat"}, ""},
		{"any service when none is asked", now, "us-east-1", "s3", nil, ""},
		{"another region", now, "eu-west-1", "ivs", []string{"ivs"}, "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{"another service", now, "us-east-1", "ivschat", []string{"ivs"}, "Credential should be scoped to correct service: 'ivs'. "},
		{"4 minutes old", now.Add(-4 * time.Minute), "us-east-1", "ivs", nil, ""},
		{"4 minutes ahead", now.Add(4 * time.Minute), "us-east-1", "ivs", nil, ""},
		{"6 minutes old", now.Add(-6 * time.Minute), "us-east-1", "ivs", nil,
			"Signature expired: 20261125T115400Z is now earlier than 20261125T115500Z (20261125T120000Z - 5 min.)"},
		{"6 minutes ahead", now.Add(6 * time.Minute), "us-east-1", "ivs", nil,
			"Signature not yet current: 20261125T120600Z is still later than 20261125T120500Z (20261125T120000Z + 5 min.)"},
	}
	for _, c := range cases {
		r, got := signedIn(t, "POST", "/ListChannels", body, c.at, c.region, c.service, nil)
		id, err := verifier(now).Verify(r, got, c.services...)
		if c.message == "" {
			if err != nil || id.Service != c.service {
				t.Errorf("%s: %v (identity %+v)", c.name, err, id)
			}
			continue
		}
		var se *SigV4Error
		if !errors.As(err, &se) || se.Code != "InvalidSignatureException" || se.Message != c.message {
			t.Errorf("%s: got %v, want InvalidSignatureException: %s", c.name, err, c.message)
		}
	}
}

func TestServiceFromScope(t *testing.T) {
	now := time.Now()
	r, _ := signed(t, "POST", "/CreateRoom", nil, now, "ivschat", nil)
	if s := Service(r); s != "ivschat" {
		t.Fatalf("Service = %q", s)
	}
}

// FuzzSigV4 feeds arbitrary Authorization headers, dates and bodies: the verifier must refuse
// them with a typed error and never panic.
func FuzzSigV4(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKGCTESTTESTTESTTEST/20261125/us-east-1/ivs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "20261125T120000Z", "/x", []byte("{}"))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request,SignedHeaders=,Signature=", "", "/tags/%zz", []byte(nil))
	f.Add("AWS4-HMAC-SHA256 ,,,==", "garbage", "//", []byte{0xff})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, authz, date, path string, body []byte) {
		r := httptest.NewRequest("POST", "http://h/", bytes.NewReader(body))
		r.URL.RawPath = path
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Amz-Date", date)
		if _, err := verifier(now).Verify(r, body); err == nil {
			t.Fatalf("accepted a request without a valid signature: %q", authz)
		}
		_ = Service(r)
	})
}
