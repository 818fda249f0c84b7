// Package e2e starts the real glasscast binary and drives it with real clients: the AWS SDK,
// ffmpeg, HLS players.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/smithy-go"

	"glasscast/awstest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glasscast-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "glasscast")
	build := exec.Command("go", "build", "-o", binary, "./cmd/glasscast")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build glasscast:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Test credentials passed to every node, so restarts keep the same key.
const (
	testAccessKey = "AKGCTESTTESTTESTTEST"
	testSecret    = "test/secret/key/0123456789abcdefghijklmn"
	testRegion    = "us-east-1"
	testAccount   = "000000000000"
)

// node is one running glasscast process.
type node struct {
	t       testing.TB
	DataDir string
	HTTP    string // host:port
	RTMP    string
	RTMPS   string
	SRT     string // UDP host:port of the SRT listener
	HTTPS   string
	args    []string
	cmd     *exec.Cmd
	logMu   sync.Mutex
	log     strings.Builder
	exited  chan struct{}
}

// handedOut remembers every port freePort gave, so that a port closed and handed out again
// by the kernel is not given to two listeners of one test.
var handedOut sync.Map

func freePort(t testing.TB) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
}

// anyHost is addr's port on every interface. WHIP's ICE listeners take ports from freePort, not
// ":0": a port the kernel picks could be one freePort handed out for a listener that has yet to
// start (TestDirector's director once found its port taken that way).
func anyHost(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return ":" + port
}

// freeUDPPort is freePort for UDP listeners (SRT).
func freeUDPPort(t testing.TB) string {
	t.Helper()
	for {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		if _, dup := handedOut.LoadOrStore("udp/"+addr, true); !dup {
			return addr
		}
	}
}

// startServe runs `glasscast serve` on free ports with dataDir ("" for a fresh one).
func startServe(t *testing.T, dataDir string, extra ...string) *node {
	t.Helper()
	return startServeTB(t, dataDir, extra...)
}

// startServeTB is startServe for benchmarks too.
func startServeTB(t testing.TB, dataDir string, extra ...string) *node {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	n := &node{t: t, DataDir: dataDir, HTTP: freePort(t), RTMP: freePort(t), RTMPS: freePort(t), HTTPS: freePort(t)}
	n.args = append([]string{"serve",
		"--data-dir", dataDir,
		"--http-listen", n.HTTP,
		"--api-access-key-id", testAccessKey,
		"--api-secret-access-key", testSecret,
		"--ingest-rtmp-listen", n.RTMP,
		"--ingest-rtmps-listen", n.RTMPS,
		"--https-listen", n.HTTPS,
		"--ingest-whip-udp-listen", anyHost(freeUDPPort(t)),
		"--ingest-whip-tcp-listen", anyHost(freePort(t)),
		"--log-level", "debug",
	}, extra...)
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	t := n.t
	t.Helper()
	if !slices.Contains(n.args, "--ingest-srt-listen") {
		// Every node gets its own SRT port: the default, 9000, would be shared by the nodes of a
		// test and by tests running at the same time.
		n.SRT = freeUDPPort(t)
		n.args = slices.Insert(n.args, 1, "--ingest-srt-listen", n.SRT)
	}
	n.cmd = exec.Command(binary, n.args...)
	pr, pw := io.Pipe()
	n.cmd.Stdout, n.cmd.Stderr = pw, pw
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start glasscast: %v", err)
	}
	n.exited = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		pw.Close()
		close(n.exited)
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n.logMu.Lock()
			n.log.WriteString(sc.Text() + "\n")
			n.logMu.Unlock()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + n.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-n.exited:
			t.Fatalf("glasscast exited during start-up:\n%s", n.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("glasscast not ready after 30s:\n%s", n.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs returns everything the process printed so far.
func (n *node) Logs() string {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	return n.log.String()
}

// stop ends the process gracefully (SIGTERM) and waits for it.
func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		logs := n.Logs()
		if len(logs) > 3000 {
			logs = logs[len(logs)-3000:]
		}
		n.t.Errorf("glasscast %s did not stop within 15s of SIGTERM; last log lines:\n%s", n.args[0], logs)
	}
}

// kill ends the process the hard way, as a crash would.
func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// restart stops (gracefully or not) and starts the process again on the same ports and data.
func (n *node) restart(hard bool) {
	if hard {
		n.kill()
	} else {
		n.stop()
	}
	n.start()
}

func (n *node) endpoint() string { return "http://" + n.HTTP }

// ivsClient is the real aws-sdk-go-v2 IVS client pointed at the node.
func (n *node) ivsClient(secret ...string) *ivs.Client {
	s := testSecret
	if len(secret) > 0 {
		s = secret[0]
	}
	return ivs.New(ivs.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(n.endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, s, ""),
		// Failures must surface at once in tests, not after retries.
		RetryMaxAttempts: 1,
		HTTPClient:       sdkHTTP,
	})
}

// sdkHTTP is the HTTP client of the tests' SDK clients, which make one attempt per call.
var sdkHTTP = awstest.HTTPClient()

// errorCode is the AWS error code of err ("" if it is not an API error).
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := errorCode(err); got != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func staticCreds(id, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(id, secret, "")
}

// startRole runs one role (`glasscast edge`, `glasscast origin`, ...) with its own data folder
// and HTTP port; extra carries what joins it to the others (--nats-url, upstreams).
func startRole(t *testing.T, role string, extra ...string) *node {
	t.Helper()
	n := &node{t: t, DataDir: t.TempDir(), HTTP: freePort(t), HTTPS: freePort(t)}
	n.args = append([]string{role,
		"--data-dir", n.DataDir,
		"--http-listen", n.HTTP,
		"--https-listen", n.HTTPS,
		"--ingest-whip-udp-listen", anyHost(freeUDPPort(t)),
		"--ingest-whip-tcp-listen", anyHost(freePort(t)),
		"--log-level", "debug",
	}, extra...)
	n.start()
	t.Cleanup(n.stop)
	return n
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func httpGet(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	return readAll(resp)
}
