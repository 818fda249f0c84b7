package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeAPI records what the console dispatched.
type fakeAPI struct{ calls []string }

func (f *fakeAPI) ServeOperation(w http.ResponseWriter, r *http.Request, service string) {
	f.calls = append(f.calls, service+" "+r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Amz-Target"))
	w.WriteHeader(http.StatusOK)
}

func newTest(t *testing.T, maxSessions int) (*Handler, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{}
	return New(Config{Secret: func(id string) (string, bool) { return "s3cret", id == "AK" }, API: api,
		Account: "000000000000", MaxSessions: maxSessions}), api
}

func do(h http.Handler, method, path, body, cookie, csrf string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	if csrf != "" {
		r.Header.Set("X-Csrf-Token", csrf)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func signIn(t *testing.T, h http.Handler) (cookie, csrf string) {
	t.Helper()
	w := do(h, "POST", "/console/signin", `{"accessKeyId":"AK","secretAccessKey":"s3cret"}`, "", "")
	if w.Code != 200 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	c := w.Result().Cookies()[0]
	var out struct{ CSRFToken string }
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return c.Name + "=" + c.Value, out.CSRFToken
}

func TestDispatchNeedsSessionAndCSRF(t *testing.T) {
	h, api := newTest(t, 0)
	if w := do(h, "POST", "/console/api/ivs/CreateChannel", `{}`, "", "x"); w.Code != 403 {
		t.Fatalf("no session: %d", w.Code)
	}
	cookie, csrf := signIn(t, h)
	if w := do(h, "POST", "/console/api/ivs/CreateChannel", `{}`, cookie, ""); w.Code != 403 {
		t.Fatalf("no CSRF: %d", w.Code)
	}
	if w := do(h, "POST", "/console/api/ivs/CreateChannel", `{}`, cookie, csrf); w.Code != 200 {
		t.Fatalf("with both: %d %s", w.Code, w.Body)
	}
	do(h, "POST", "/console/api/monitoring/GetMetricData", `{}`, cookie, csrf)
	if w := do(h, "POST", "/console/api/s3/ListBuckets", `{}`, cookie, csrf); w.Code != 404 {
		t.Fatalf("unknown service: %d", w.Code)
	}
	want := []string{"ivs POST /CreateChannel ", "monitoring POST / GraniteServiceVersion20100801.GetMetricData"}
	if strings.Join(api.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("dispatched %q, want %q", api.calls, want)
	}
}

func TestSessionsAreBounded(t *testing.T) {
	h, _ := newTest(t, 2)
	first, csrf := signIn(t, h)
	signIn(t, h)
	signIn(t, h) // evicts the least recently used: the first
	if w := do(h, "POST", "/console/api/ivs/ListChannels", `{}`, first, csrf); w.Code != 403 {
		t.Fatalf("evicted session still accepted: %d", w.Code)
	}
}

func TestWrongSecretLocksOut(t *testing.T) {
	h, _ := newTest(t, 0)
	var codes []int
	for range freeFailures + 2 {
		codes = append(codes, do(h, "POST", "/console/signin", `{"accessKeyId":"AK","secretAccessKey":"no"}`, "", "").Code)
	}
	if codes[freeFailures-1] != 403 || codes[freeFailures+1] != 429 {
		t.Fatalf("codes %v: want 403 until the lock-out, then 429", codes)
	}
	// The lock-out is per client: another address signs in.
	r := httptest.NewRequest("POST", "/console/signin", strings.NewReader(`{"accessKeyId":"AK","secretAccessKey":"s3cret"}`))
	r.RemoteAddr, r.Header["Content-Type"] = "198.51.100.7:1", []string{"application/json"}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("another client: %d", w.Code)
	}
	// A form post (a cross-site page) cannot sign in.
	r = httptest.NewRequest("POST", "/console/signin", strings.NewReader(`accessKeyId=AK`))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Fatalf("form sign-in: %d", w.Code)
	}
}

func TestSSEWriterFramesLines(t *testing.T) {
	var b bytes.Buffer
	s := &sseWriter{w: &b}
	_, _ = s.Write([]byte(`{"a":1}` + "\n" + `{"b":`))
	_, _ = s.Write([]byte("2}\n"))
	if b.String() != "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n" {
		t.Fatalf("%q", b.String())
	}
}

func TestObjectPathsStayInRecordings(t *testing.T) {
	h, _ := newTest(t, 0)
	h.cfg.Buckets = nil
	for _, p := range []string{"b/ivs/v1/../../etc/passwd", "b/other/key", "../x/ivs/v1/a"} {
		w := httptest.NewRecorder()
		h.serveObject(w, httptest.NewRequest("GET", "/", nil), p)
		if w.Code != 404 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}

}
