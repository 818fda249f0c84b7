package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKey    = "AKGCTESTTESTTESTTEST"
	testSecret = "test/secret"
)

// bare is a Server without a store: enough for what is refused before an operation runs.
func bare() *Server {
	return New(Config{Region: "us-east-1", Account: "000000000000",
		Secret: func(id string) (string, bool) { return testSecret, id == testKey }},
		nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func awsError(t *testing.T, w *httptest.ResponseRecorder) (int, string, string) {
	t.Helper()
	var body struct{ Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return w.Code, w.Header().Get("x-amzn-ErrorType"), body.Message
}

// An over-size body gets AWS's 413, whether its length is announced or found while reading.
func TestOversizeBody(t *testing.T) {
	s := bare()
	big := bytes.Repeat([]byte("a"), DefaultMaxBodyBytes+1)
	for name, length := range map[string]int64{"announced": int64(len(big)), "chunked": -1} {
		r := httptest.NewRequest("POST", "/PutMetadata", bytes.NewReader(big))
		r.ContentLength = length
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		status, code, msg := awsError(t, w)
		if status != 413 || code != "RequestEntityTooLargeException" || msg == "" || w.Header().Get("Connection") != "close" {
			t.Errorf("%s: %d %s %q", name, status, code, msg)
		}
	}
	w := httptest.NewRecorder()
	s.RefuseTooLarge(w)
	if status, code, _ := awsError(t, w); status != 413 || code != "RequestEntityTooLargeException" || w.Header().Get("x-amzn-RequestId") == "" {
		t.Errorf("RefuseTooLarge: %d %s", status, code)
	}
}

// A signature must be scoped to the service whose operation it calls.
func TestSignatureServiceScope(t *testing.T) {
	s := bare()
	cases := []struct{ path, service, want string }{
		{"/ListChannels", "ivschat", "Credential should be scoped to correct service: 'ivs'. "},
		{"/CreateRoom", "ivs", "Credential should be scoped to correct service: 'ivschat'. "},
		{"/", "ivs", "Credential should be scoped to correct service: 'monitoring'. "},
		{"/ListChannels", "monitoring", "Credential should be scoped to correct service: 'ivs'. "},
	}
	for _, c := range cases {
		body := []byte(`{}`)
		r := httptest.NewRequest("POST", "http://127.0.0.1:8080"+c.path, bytes.NewReader(body))
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
			r, hex.EncodeToString(sum[:]), c.service, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if status, code, msg := awsError(t, w); status != 403 || code != "InvalidSignatureException" || msg != c.want {
			t.Errorf("%s signed for %s: %d %s %q", c.path, c.service, status, code, msg)
		}
	}
	// Both IVS and IVS Chat answer /tags; either scope reaches its own operation.
	r := httptest.NewRequest("GET", "/tags/x", nil)
	if got := strings.Join(s.services(r), ","); got != "ivs,ivschat" {
		t.Errorf("services of /tags: %s", got)
	}
}
