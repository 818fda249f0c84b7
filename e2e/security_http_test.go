package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivs"

	"glasscast/awstest"
)

// Security regressions of the public HTTP surfaces (issue 15): what an unauthenticated client
// can make the server hold, how long a body may take, what the API answers to an over-size
// body or a signature for another region, service or time, and who may read /metrics.
// Options are passed in the environment so that the same tests run against a binary that
// does not know them yet (and fail there).

// vmRSS is the resident memory of a process, from /proc/<pid>/status.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestSecurityBodyMemoryBeforeAuth opens 1,000 connections that each announce a body and send
// one byte of it, without credentials, and bounds what the server's memory grows by.
func TestSecurityBodyMemoryBeforeAuth(t *testing.T) {
	t.Setenv("GLASSCAST_HTTP_MAX_CONNS_PER_IP", "0") // every connection comes from 127.0.0.1
	conns := 1000
	if s := os.Getenv("GLASSCAST_E2E_BODY_CONNS"); s != "" {
		conns, _ = strconv.Atoi(s) // fewer for a run against a server that allocates 4 MiB each
	}
	n := startServe(t, "")
	pid := n.cmd.Process.Pid
	const limit = 50 << 20
	for _, announce := range []int{4 << 20, 1 << 20} {
		t.Run(fmt.Sprintf("announce %d bytes", announce), func(t *testing.T) {
			paths := []string{"/CreateChannel", "/healthz", "/api/video/v1/us-east-1.000000000000.channel.abc.m3u8", "/PutMetadata"}
			// The baseline is the lowest of a few samples, so a collection that happens to
			// finish during the attack does not make growth look smaller than it is.
			base := int64(1 << 62)
			for i := 0; i < 10; i++ {
				base = min(base, vmRSS(t, pid))
				time.Sleep(100 * time.Millisecond)
			}
			peak := base
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i := 0; i < conns; i++ {
				c, err := net.DialTimeout("tcp", n.HTTP, 10*time.Second)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				held = append(held, c)
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", paths[i%len(paths)], n.HTTP, announce)
				if i%50 == 0 {
					peak = max(peak, vmRSS(t, pid))
				}
			}
			// Sample until the peak has not risen for 2 s (at least 3 s, at most 30 s): a loaded
			// machine may take that long to read 1,000 connections.
			start, rose := time.Now(), time.Now()
			for time.Since(start) < 30*time.Second && (time.Since(start) < 3*time.Second || time.Since(rose) < 2*time.Second) {
				if r := vmRSS(t, pid); r > peak {
					peak, rose = r, time.Now()
				}
				time.Sleep(100 * time.Millisecond)
			}
			growth := peak - base
			t.Logf("%d connections announcing %d bytes: RSS %d MB -> peak %d MB (growth %.1f MB)", conns, announce, base>>20, peak>>20, float64(growth)/(1<<20))
			if growth > limit {
				t.Errorf("RSS grew by %.1f MB, want under %d MB", float64(growth)/(1<<20), limit>>20)
			}
			if _, err := httpGet(ctxT(t, 10*time.Second), n.endpoint()+"/healthz"); err != nil {
				t.Errorf("server unhealthy after the attack: %v", err)
			}
		})
	}
}

// TestSecurityConnsPerIP: past http.maxConnsPerIp, a client's next connection is closed at
// once, and a slot frees when one of its connections closes.
func TestSecurityConnsPerIP(t *testing.T) {
	const perIP = 4
	t.Setenv("GLASSCAST_HTTP_MAX_CONNS_PER_IP", strconv.Itoa(perIP))
	n := startServe(t, "")
	http.DefaultClient.CloseIdleConnections() // the harness's readiness probe held one
	get := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", n.HTTP)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	// open dials until a connection answers, for up to 10 s: the server frees a slot only
	// after it has seen a client's close.
	open := func() net.Conn {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", n.HTTP)
			if err == nil {
				if err = get(c); err == nil {
					return c
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("no connection answers: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < perIP; i++ {
		conns = append(conns, open())
	}
	extra, err := net.Dial("tcp", n.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := get(extra); err == nil {
		t.Fatalf("connection %d of one address was served; http.maxConnsPerIp is %d", perIP+1, perIP)
	} else {
		t.Logf("connection %d refused: %v", perIP+1, err)
	}
	for i, c := range conns {
		if err := get(c); err != nil {
			t.Fatalf("held connection %d stopped answering: %v", i, err)
		}
	}
	conns[0].Close()
	conns[0] = open()
}

// TestSecurityBodyTimeout: a request that sends its headers and then none of its body is
// closed within http.bodyTimeout, on HTTP, HTTPS/1.1 and HTTPS/2; a keep-alive connection
// between bodyless requests outlives it.
func TestSecurityBodyTimeout(t *testing.T) {
	t.Setenv("GLASSCAST_HTTP_BODY_TIMEOUT", "2s")
	n := startServe(t, "")
	const bound = 15 * time.Second // 2 s asked, generous for a loaded machine
	head := fmt.Sprintf("POST /CreateChannel HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", n.HTTP)
	waitClosed := func(t *testing.T, c net.Conn) {
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(bound + 10*time.Second))
		_, err := io.Copy(io.Discard, c) // a response, if any, then the close
		if took := time.Since(start); err != nil || took > bound {
			t.Fatalf("connection still open after %s (err %v); want closed within %s", took.Round(time.Millisecond), err, bound)
		} else {
			t.Logf("closed after %s", took.Round(time.Millisecond))
		}
	}
	t.Run("http", func(t *testing.T) {
		c, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, head)
		waitClosed(t, c)
	})
	t.Run("https/1.1", func(t *testing.T) {
		c, err := tls.Dial("tcp", n.HTTPS, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, head)
		waitClosed(t, c)
	})
	t.Run("https/2", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		pr, pw := io.Pipe()
		defer pw.Close()
		req, _ := http.NewRequestWithContext(ctxT(t, bound+10*time.Second), "POST", "https://"+n.HTTPS+"/CreateChannel", pr)
		req.ContentLength = 100
		start := time.Now()
		go func() { _, _ = pw.Write([]byte("{")) }()
		resp, err := tr.RoundTrip(req)
		took := time.Since(start)
		if err == nil {
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
			}
		}
		if took > bound || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stream still open after %s (err %v); want ended within %s", took.Round(time.Millisecond), err, bound)
		}
		t.Logf("stream ended after %s: %v %v", took.Round(time.Millisecond), statusOf(resp), err)
	})
	t.Run("a keep-alive connection outlives it", func(t *testing.T) {
		c, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", n.HTTP)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(3 * time.Second) // past the body timeout, within the idle timeout
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", n.HTTP)
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatalf("keep-alive connection without a body was closed: %v", err)
		}
		resp.Body.Close()
	})
}

func statusOf(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return resp.Status
}

// TestSecurityOversizeBody: an API body over the control API's 1 MiB is refused with an
// AWS-shaped 413 that aws-sdk-go-v2 decodes, on both listeners, and an announced one is refused
// before it is sent.
func TestSecurityOversizeBody(t *testing.T) {
	n := startServe(t, "")
	ctx := ctxT(t, 60*time.Second)
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	for _, ep := range []struct {
		name, url string
		client    *http.Client
	}{{"http", n.endpoint(), http.DefaultClient}, {"https", "https://" + n.HTTPS, tlsClient}} {
		t.Run(ep.name, func(t *testing.T) {
			c := ivs.New(ivs.Options{Region: testRegion, BaseEndpoint: aws.String(ep.url), HTTPClient: awstest.HideBodyWriteTo(ep.client),
				Credentials: credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, ""), RetryMaxAttempts: 1})
			_, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: aws.String("arn:aws:ivs:us-east-1:000000000000:channel/abcdEFGH1234"),
				Metadata: aws.String(strings.Repeat("a", 2<<20))})
			wantCode(t, err, "RequestEntityTooLargeException")
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusRequestEntityTooLarge {
				t.Fatalf("want HTTP 413, got %v", err)
			}
			t.Logf("%v", err)
		})
	}
	t.Run("announced, not sent", func(t *testing.T) {
		c, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(c, "POST /PutMetadata HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", n.HTTP, 4<<20)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to an announced 4 MiB body: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var msg struct{ Message string }
		if resp.StatusCode != 413 || resp.Header.Get("x-amzn-ErrorType") != "RequestEntityTooLargeException" || json.Unmarshal(body, &msg) != nil || msg.Message == "" {
			t.Fatalf("got %s %q %s", resp.Status, resp.Header.Get("x-amzn-ErrorType"), body)
		}
	})
}

// TestSecurityUnparsableRequest: what fasthttp cannot parse gets its 400 and a structured log
// line at debug level, not a raw line on stderr.
func TestSecurityUnparsableRequest(t *testing.T) {
	n := startServe(t, "")
	c, err := net.Dial("tcp", n.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("status %s, want 400", resp.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(n.Logs(), `msg="http request refused"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no structured log line for the refused request:\n%s", n.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range strings.Split(n.Logs(), "\n") {
		if strings.Contains(line, "error when") && !strings.HasPrefix(line, "time=") {
			t.Errorf("raw log line: %s", line)
		}
	}
}

// signedCall sends a SigV4-signed ivs request signed for region and service at the given time
// and returns the status, error type and message.
func signedCall(t *testing.T, n *node, path, body, region, service string, at time.Time) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("POST", n.endpoint()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret},
		req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := readAll(resp)
	var msg struct{ Message string }
	_ = json.Unmarshal(b, &msg)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), msg.Message
}

// TestSecuritySigV4Scope: the credential scope must name this deployment's region and the
// service of the operation, and the request time must be within AWS's 5 minutes.
func TestSecuritySigV4Scope(t *testing.T) {
	n := startServe(t, "")
	now := time.Now()
	t.Run("the SDK signing for another region", func(t *testing.T) {
		c := ivs.New(ivs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(n.endpoint()),
			Credentials: credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, ""), RetryMaxAttempts: 1, HTTPClient: sdkHTTP})
		_, err := c.ListChannels(ctxT(t, 20*time.Second), &ivs.ListChannelsInput{})
		wantCode(t, err, "InvalidSignatureException")
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden || !strings.Contains(err.Error(), "Credential should be scoped to a valid region") {
			t.Fatalf("want 403 'Credential should be scoped to a valid region', got %v", err)
		}
	})
	cases := []struct {
		name, path, region, service string
		at                          time.Time
		status                      int
		code, message               string
	}{
		{"right scope", "/ListChannels", testRegion, "ivs", now, 200, "", ""},
		{"wrong region", "/ListChannels", "eu-west-1", "ivs", now, 403, "InvalidSignatureException", "Credential should be scoped to a valid region"},
		{"ivs operation signed for ivschat", "/ListChannels", testRegion, "ivschat", now, 403, "InvalidSignatureException", "Credential should be scoped to correct service: 'ivs'"},
		{"ivschat operation signed for ivs", "/ListRooms", testRegion, "ivs", now, 403, "InvalidSignatureException", "Credential should be scoped to correct service: 'ivschat'"},
		{"signed for s3", "/ListChannels", testRegion, "s3", now, 403, "InvalidSignatureException", "Credential should be scoped to correct service: 'ivs'"},
		{"4 minutes old", "/ListChannels", testRegion, "ivs", now.Add(-4 * time.Minute), 200, "", ""},
		{"4 minutes ahead", "/ListChannels", testRegion, "ivs", now.Add(4 * time.Minute), 200, "", ""},
		{"6 minutes old", "/ListChannels", testRegion, "ivs", now.Add(-6 * time.Minute), 403, "InvalidSignatureException", "Signature expired"},
		{"6 minutes ahead", "/ListChannels", testRegion, "ivs", now.Add(6 * time.Minute), 403, "InvalidSignatureException", "Signature not yet current"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, code, msg := signedCall(t, n, c.path, "{}", c.region, c.service, c.at)
			if status != c.status || code != c.code || !strings.Contains(msg, c.message) {
				t.Fatalf("got %d %s %q, want %d %s %q", status, code, msg, c.status, c.code, c.message)
			}
		})
	}
}

// TestSecurityMetricsAccess: /metrics lists live private channel ids, so it is not public:
// by default it needs a bearer token, and with metrics.listen it is served only there.
func TestSecurityMetricsAccess(t *testing.T) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the self-signed HTTPS
	get := func(t *testing.T, url, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := readAll(resp)
		if resp.StatusCode == 200 && !bytes.Contains(b, []byte("go_goroutines")) {
			t.Fatalf("%s: 200 without metrics", url)
		}
		return resp.StatusCode
	}
	t.Run("default", func(t *testing.T) {
		n := startServe(t, "")
		if s := get(t, n.endpoint()+"/metrics", ""); s != 401 {
			t.Fatalf("/metrics without a token: %d, want 401", s)
		}
		if s := get(t, "https://"+n.HTTPS+"/metrics", ""); s != 401 {
			t.Fatalf("HTTPS /metrics without a token: %d, want 401", s)
		}
	})
	t.Run("token", func(t *testing.T) {
		t.Setenv("GLASSCAST_METRICS_TOKEN", "scrape-secret-0123456789")
		n := startServe(t, "")
		for token, want := range map[string]int{"": 401, "wrong": 401, "scrape-secret-0123456789": 200} {
			if s := get(t, n.endpoint()+"/metrics", token); s != want {
				t.Errorf("/metrics with token %q: %d, want %d", token, s, want)
			}
		}
	})
	t.Run("own listener", func(t *testing.T) {
		private := freePort(t)
		t.Setenv("GLASSCAST_METRICS_LISTEN", private)
		n := startServe(t, "")
		if s := get(t, n.endpoint()+"/metrics", ""); s != 404 {
			t.Errorf("/metrics on the public listener: %d, want 404", s)
		}
		if s := get(t, "http://"+private+"/metrics", ""); s != 200 {
			t.Errorf("/metrics on metrics.listen: %d, want 200", s)
		}
		// Go's profiles are on the private listener only.
		for base, want := range map[string]int{"http://" + private: 200, n.endpoint(): 404} {
			resp, err := client.Get(base + "/debug/pprof/mutex?debug=1")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := readAll(resp)
			if resp.StatusCode != want || want == 200 && !bytes.Contains(b, []byte("sampling period=100")) {
				t.Errorf("%s/debug/pprof/mutex: %d, want %d (%.80q)", base, resp.StatusCode, want, b)
			}
		}
	})
}
