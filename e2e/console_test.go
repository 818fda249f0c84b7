package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
)

// TestConsoleBrowser drives the web console in headless Chromium: sign-in (a wrong secret is
// refused first), create a channel, publish to it with ffmpeg, see it LIVE with a playing
// preview and a rising viewer count, send metadata and see the cue in the preview, stop the
// stream, and moderate a chat room a real chat SDK client is in; screenshots in e2e/artifacts.
func TestConsoleBrowser(t *testing.T) {
	needBrowser(t)
	var hooked atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hooked.Add(1) }))
	defer hook.Close()
	n := startServe(t, "", "--events-webhooks", hook.URL+"/ivs")
	art := artifactDir(t)
	var (
		pub     *publisher
		viewer  *gohlslib.Client
		steps   = map[string]json.RawMessage{}
		stepsMu sync.Mutex
	)
	t.Cleanup(func() {
		if viewer != nil {
			viewer.Close()
		}
	})
	os.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	os.Setenv("AWS_REGION", testRegion)
	os.Setenv("GLASSCAST_ENDPOINT", n.endpoint())
	os.Setenv("CHAT_URL", n.chatURL())
	start := time.Now()
	nodeScript(t, func(m map[string]json.RawMessage) {
		for k, v := range m {
			stepsMu.Lock()
			steps[k] = v
			stepsMu.Unlock()
			t.Logf("%6.1fs %s: %s", time.Since(start).Seconds(), k, v)
			switch k {
			case "channel":
				var ch struct{ StreamKey, ID string }
				_ = json.Unmarshal(v, &ch)
				pub = publish(t, "rtmp://"+n.RTMP+"/app/"+ch.StreamKey, pubOptions{Size: "640x360"})
			case "live":
				// A second viewer (another client identity than the browser's) makes the count rise.
				var ch struct{ ID string }
				_ = json.Unmarshal(steps["channel"], &ch)
				viewer = &gohlslib.Client{URI: "http://" + n.HTTP + "/api/video/v1/" + testRegion + "." + testAccount + ".channel." + ch.ID + ".m3u8"}
				viewer.OnTracks = func([]*gohlslib.Track) error { return nil }
				quiet := func(string) {}
				viewer.OnDownloadPrimaryPlaylist, viewer.OnDownloadStreamPlaylist, viewer.OnDownloadSegment, viewer.OnDownloadPart = quiet, quiet, quiet, quiet
				if err := viewer.Start(); err != nil {
					t.Errorf("hls viewer: %v", err)
				}
			}
		}
	}, "console.mjs", "http://"+n.HTTP+"/console/", art)
	for _, k := range []string{"signInRefused", "live", "viewersRose", "cue", "stopped", "events", "webhooks", "recording", "chatDeleted", "chatDisconnected", "signedOut"} {
		if _, ok := steps[k]; !ok {
			t.Errorf("the console script did not reach %q", k)
		}
	}
	if hooked.Load() == 0 {
		t.Error("the webhook received nothing")
	}
	if pub != nil {
		select {
		case <-pub.exited: // StopStream disconnected it
		case <-time.After(5 * time.Second):
			t.Error("ffmpeg still publishing after the console's Stop stream")
		}
	}
	for _, f := range []string{"signin", "channels", "channel-live", "events", "chat-room", "recordings", "keys"} {
		if _, err := os.Stat(filepath.Join(art, "console-"+f+".png")); err != nil {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
}

// TestConsoleAuth checks the console's guards over HTTP: the API refuses requests without a
// session and state changes without the CSRF token (403), a wrong secret is refused, slowed
// and, repeated, locked out; the session cookie is HttpOnly, SameSite=Strict and Secure on
// HTTPS; sign-out ends the session.
func TestConsoleAuth(t *testing.T) {
	n := startServe(t, "")
	base := "http://" + n.HTTP + "/console/"
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	post := func(c *http.Client, url, csrf, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctxT(t, 10*time.Second), http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-Csrf-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		return resp, b.String()
	}
	want := func(resp *http.Response, body string, status int, code string) {
		t.Helper()
		if resp.StatusCode != status || resp.Header.Get("x-amzn-ErrorType") != code {
			t.Fatalf("want %d %s, got %d %s %s", status, code, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
		}
	}

	// No session: refused, whatever the headers; the event feed and recordings too.
	resp, body := post(c, base+"api/ivs/CreateChannel", "x", `{}`)
	want(resp, body, 403, "AccessDeniedException")
	for _, p := range []string{"events", "recordings?bucket=b&channel=c", "objects/b/ivs/v1/000000000000/c/master.m3u8"} {
		r, err := c.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 403 {
			t.Errorf("GET %s without a session: %d", p, r.StatusCode)
		}
	}

	// A wrong secret is refused and slowed.
	began := time.Now()
	resp, body = post(c, base+"signin", "", `{"accessKeyId":"`+testAccessKey+`","secretAccessKey":"wrong"}`)
	want(resp, body, 403, "AccessDeniedException")
	if d := time.Since(began); d < 400*time.Millisecond {
		t.Errorf("a wrong secret was answered in %v: not slowed", d)
	}
	if !strings.Contains(body, "wrong access key ID or secret access key") {
		t.Errorf("unclear message: %s", body)
	}

	// The right one gives a session cookie with the expected attributes and a CSRF token.
	resp, body = post(c, base+"signin", "", `{"accessKeyId":"`+testAccessKey+`","secretAccessKey":"`+testSecret+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	var s struct{ CSRFToken string }
	_ = json.Unmarshal([]byte(body), &s)
	cookie := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/console/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie lacks %s: %s", attr, cookie)
		}
	}
	if strings.Contains(cookie, "Secure") || s.CSRFToken == "" || strings.Contains(body, testSecret) {
		t.Errorf("plain-HTTP sign-in answer: cookie %q body %s", cookie, body)
	}

	// With the session but without (or with a wrong) CSRF token: refused, and nothing created.
	resp, body = post(c, base+"api/ivs/CreateChannel", "", `{"name":"csrf"}`)
	want(resp, body, 403, "AccessDeniedException")
	resp, body = post(c, base+"api/ivs/CreateChannel", s.CSRFToken+"x", `{"name":"csrf"}`)
	want(resp, body, 403, "AccessDeniedException")
	resp, body = post(c, base+"signout", "", ``)
	want(resp, body, 403, "AccessDeniedException")
	list, err := n.ivsClient().ListChannels(ctxT(t, 5*time.Second), nil)
	if err != nil || len(list.Channels) != 0 {
		t.Fatalf("channels after refused requests: %v %v", list, err)
	}

	// With both, the console runs the same operations as SigV4, AWS errors included.
	resp, body = post(c, base+"api/ivs/CreateChannel", s.CSRFToken, `{"name":"from-console"}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"from-console"`) {
		t.Fatalf("CreateChannel: %d %s", resp.StatusCode, body)
	}
	resp, body = post(c, base+"api/ivs/GetChannel", s.CSRFToken, `{"arn":"arn:aws:ivs:us-east-1:000000000000:channel/nope"}`)
	want(resp, body, 404, "ResourceNotFoundException")

	// Sign-out ends the session on the server, not only in this browser.
	old := jar.Cookies(resp.Request.URL)
	resp, body = post(c, base+"signout", s.CSRFToken, ``)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
	}
	replay, _ := cookiejar.New(nil)
	replay.SetCookies(resp.Request.URL, old)
	resp, body = post(&http.Client{Jar: replay}, base+"api/ivs/ListChannels", s.CSRFToken, `{}`)
	want(resp, body, 403, "AccessDeniedException")

	// Over HTTPS the cookie is Secure.
	tc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, body = post(tc, "https://"+n.HTTPS+"/console/signin", "", `{"accessKeyId":"`+testAccessKey+`","secretAccessKey":"`+testSecret+`"}`)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Set-Cookie"), "Secure") {
		t.Errorf("HTTPS sign-in: %d cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}

	// Repeated wrong secrets lock the client out, with a clear message and Retry-After.
	var locked *http.Response
	for i := 0; i < 6 && locked == nil; i++ {
		resp, body = post(c, base+"signin", "", `{"accessKeyId":"`+testAccessKey+`","secretAccessKey":"guess"}`)
		if resp.StatusCode == http.StatusTooManyRequests {
			locked = resp
		}
	}
	if locked == nil || locked.Header.Get("Retry-After") == "" || !strings.Contains(body, "try again in") {
		t.Fatalf("no lock-out after repeated wrong secrets: %d %s", resp.StatusCode, body)
	}
	// Even the right secret waits out the lock.
	resp, body = post(c, base+"signin", "", `{"accessKeyId":"`+testAccessKey+`","secretAccessKey":"`+testSecret+`"}`)
	want(resp, body, http.StatusTooManyRequests, "ThrottlingException")
}
