package e2e

// A real NATS cluster for e2e tests and drills: N nats-server processes (the version go.mod pins)
// on 127.0.0.1, JetStream on, user/password on clients, routes between all nodes, each node with
// its own store folder and server tags. Callers may send a node's route connections through
// another address (a latency proxy between "regions").

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsClusterConfig describes a cluster to start.
type natsClusterConfig struct {
	Nodes []natsNodeConfig
	// RouteAddr, when set, gives the address node from dials to reach node to's cluster port
	// addr (both "127.0.0.1:port"); return addr itself for a direct route. A proxy put there sees
	// every explicit route connection from "from" to "to". Routes the servers learn by gossip
	// dial the advertised address directly; every node lists every other node explicitly, so
	// gossip adds a route only while a configured one is still connecting. Check /routez on
	// MonitorURL when a drill depends on it.
	RouteAddr func(from, to int, addr string) string
}

// natsNodeConfig is one server of the cluster.
type natsNodeConfig struct {
	Name string   // server_name; also what JetStream reports as a stream's leader
	Tags []string // server_tags, e.g. "region:a"
}

// natsCluster is a running cluster. Its nodes stop when the test ends.
type natsCluster struct {
	t        testing.TB
	User     string
	Password string
	Nodes    []*natsNode
}

// natsNode is one nats-server process of a cluster.
type natsNode struct {
	t           testing.TB
	Index       int
	Name        string
	ClientAddr  string // 127.0.0.1:port
	ClusterAddr string // 127.0.0.1:port
	MonitorAddr string // 127.0.0.1:port, the HTTP monitoring endpoint
	Dir         string // config, log and JetStream store
	conf        string
	mu          sync.Mutex
	cmd         *exec.Cmd
	exited      chan struct{}
}

// startNATSCluster starts the cluster and waits until it has a JetStream meta leader.
func startNATSCluster(t testing.TB, cfg natsClusterConfig) *natsCluster {
	t.Helper()
	bin := natsServerBinary(t)
	c := &natsCluster{t: t, User: "glasscast", Password: randomHex(t, 32)}
	root := t.TempDir()
	for i, nc := range cfg.Nodes {
		name := nc.Name
		if name == "" {
			name = fmt.Sprintf("n%d", i)
		}
		c.Nodes = append(c.Nodes, &natsNode{t: t, Index: i, Name: name,
			ClientAddr: freePort(t), ClusterAddr: freePort(t), MonitorAddr: freePort(t),
			Dir: filepath.Join(root, name)})
	}
	for i, n := range c.Nodes {
		var routes []string
		for j, peer := range c.Nodes {
			if j == i {
				continue
			}
			addr := peer.ClusterAddr
			if cfg.RouteAddr != nil {
				addr = cfg.RouteAddr(i, j, addr)
			}
			routes = append(routes, fmt.Sprintf("%q", "nats-route://"+addr))
		}
		var tags []string
		for _, tag := range cfg.Nodes[i].Tags {
			tags = append(tags, fmt.Sprintf("%q", tag))
		}
		conf := fmt.Sprintf(`server_name: %q
listen: %q
http: %q
server_tags: [%s]
jetstream { store_dir: %q }
authorization { user: %q, password: %q }
cluster {
  name: "glasscast"
  listen: %q
  routes: [%s]
}
`, n.Name, n.ClientAddr, n.MonitorAddr, strings.Join(tags, ", "), filepath.Join(n.Dir, "jetstream"),
			c.User, c.Password, n.ClusterAddr, strings.Join(routes, ", "))
		if err := os.MkdirAll(n.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		n.conf = filepath.Join(n.Dir, "nats.conf")
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n.start(bin)
	}
	t.Cleanup(c.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.WaitMetaLeader(ctx); err != nil {
		t.Fatalf("nats cluster: %v\n%s", err, c.Logs())
	}
	return c
}

// ClientURLs lists every node's client URL, comma separated, as --nats-url takes them.
func (c *natsCluster) ClientURLs() string {
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, "nats://"+n.ClientAddr)
	}
	return strings.Join(urls, ",")
}

// JoinArgs are the glasscast flags that join a process to the cluster.
func (c *natsCluster) JoinArgs() []string {
	return []string{"--nats-url", c.ClientURLs(), "--nats-user", c.User, "--nats-password", c.Password}
}

// Connect opens a client connection with the cluster's credentials; it closes when the test ends.
func (c *natsCluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.UserInfo(c.User, c.Password), nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.ClientURLs(), opts...)
	if err != nil {
		t.Fatalf("connect to nats cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Node returns the node named name, or nil.
func (c *natsCluster) Node(name string) *natsNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// WaitMetaLeader waits until every running node agrees on a JetStream meta leader and returns
// its name.
func (c *natsCluster) WaitMetaLeader(ctx context.Context) (string, error) {
	var last error
	for {
		leader := ""
		agreed := true
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			l, err := n.metaLeader(ctx)
			if err != nil || l == "" || (leader != "" && l != leader) {
				agreed, last = false, err
				break
			}
			leader = l
		}
		if agreed && leader != "" {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no JetStream meta leader: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StreamLeader returns the node leading a JetStream stream (a KV bucket's stream is KV_<bucket>).
func (c *natsCluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (*natsNode, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	n := c.Node(info.Cluster.Leader)
	if n == nil {
		return nil, fmt.Errorf("stream %s led by unknown node %q", stream, info.Cluster.Leader)
	}
	return n, nil
}

// Stop ends every node gracefully.
func (c *natsCluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Logs returns every node's log, for failure messages.
func (c *natsCluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "--- nats node %s ---\n%s\n", n.Name, n.Logs())
	}
	return b.String()
}

func (n *natsNode) start(bin string) {
	n.t.Helper()
	logf, err := os.OpenFile(filepath.Join(n.Dir, "nats.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.t.Fatalf("start nats-server %s: %v", n.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + n.MonitorAddr + "/healthz?js-server-only=true")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			n.t.Fatalf("nats-server %s exited during start-up:\n%s", n.Name, n.Logs())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server %s not ready after 30s:\n%s", n.Name, n.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the node's process is up.
func (n *natsNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Kill ends the node with SIGKILL, as a crash would.
func (n *natsNode) Kill() { n.signal(syscall.SIGKILL) }

// Stop ends the node gracefully (SIGTERM; SIGKILL after 15 s).
func (n *natsNode) Stop() { n.signal(syscall.SIGTERM) }

func (n *natsNode) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart starts a stopped or killed node again on the same ports and store.
func (n *natsNode) Restart() {
	n.t.Helper()
	if n.Running() {
		n.Stop()
	}
	n.start(natsServerBinary(n.t))
}

// ClientURL is the node's own client URL.
func (n *natsNode) ClientURL() string { return "nats://" + n.ClientAddr }

// MonitorURL is the node's HTTP monitoring base URL (/varz, /routez, /jsz, ...).
func (n *natsNode) MonitorURL() string { return "http://" + n.MonitorAddr }

// Logs returns what the node printed.
func (n *natsNode) Logs() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "nats.log"))
	return string(b)
}

func (n *natsNode) metaLeader(ctx context.Context) (string, error) {
	body, err := httpGet(ctx, n.MonitorURL()+"/jsz")
	if err != nil {
		return "", err
	}
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := json.Unmarshal(body, &jsz); err != nil {
		return "", fmt.Errorf("jsz of %s: %w", n.Name, err)
	}
	if jsz.Meta == nil {
		return "", nil
	}
	return jsz.Meta.Leader, nil
}

var natsServerOnce struct {
	sync.Once
	path string
	err  error
}

// natsServerBinary is the nats-server of the version go.mod pins: $(go env GOPATH)/bin/nats-server
// when .ci/deps installed that version, else built once into a cache folder shared by test runs.
// Debian's nats-server on the PATH is too old for Glasscast and never used.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	natsServerOnce.Do(func() {
		natsServerOnce.path, natsServerOnce.err = findNATSServer()
	})
	if natsServerOnce.err != nil {
		t.Fatalf("nats-server: %v", natsServerOnce.err)
	}
	return natsServerOnce.path
}

func findNATSServer() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		return "", fmt.Errorf("pinned version: %w", err)
	}
	version := strings.TrimSpace(string(out))
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOPATH: %w", err)
	}
	installed := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats-server")
	if v, err := exec.Command(installed, "--version").Output(); err == nil && bytes.Contains(v, []byte(version+"\n")) {
		return installed, nil
	}
	dir := filepath.Join(os.TempDir(), "glasscast-nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build beside the final name and rename, so concurrent test binaries never run a half-written file.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	build := exec.Command("go", "build", "-o", tmp, "github.com/nats-io/nats-server/v2")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build nats-server %s: %w\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// natsLogin returns the flags that log a process in to n's embedded NATS server (started with
// --nats-listen): the credentials it generated into its data folder on first start.
func natsLogin(t testing.TB, n *node) []string {
	t.Helper()
	user, password := natsCredentials(t, n)
	return []string{"--nats-user", user, "--nats-password", password}
}

// natsLoginOption is natsLogin for a nats.go client.
func natsLoginOption(t testing.TB, n *node) nats.Option {
	t.Helper()
	return nats.UserInfo(natsCredentials(t, n))
}

func natsCredentials(t testing.TB, n *node) (user, password string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.DataDir, "nats-credentials.json"))
	if err != nil {
		t.Fatalf("nats credentials of %s: %v", n.DataDir, err)
	}
	var c struct{ User, Password string }
	if err := json.Unmarshal(b, &c); err != nil || c.User == "" || c.Password == "" {
		t.Fatalf("nats credentials of %s are damaged: %v", n.DataDir, err)
	}
	return c.User, c.Password
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestNATSCluster checks the harness itself: three nodes elect a meta leader, a replicated KV
// bucket survives the kill of its leader, and a restarted node catches up.
func TestNATSCluster(t *testing.T) {
	c := startNATSCluster(t, natsClusterConfig{Nodes: []natsNodeConfig{
		{Name: "a1", Tags: []string{"region:a"}},
		{Name: "a2", Tags: []string{"region:a"}},
		{Name: "b1", Tags: []string{"region:b"}},
	}})
	ctx := ctxT(t, 2*time.Minute)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "harness", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	leader, err := c.StreamLeader(ctx, js, "KV_harness")
	if err != nil {
		t.Fatal(err)
	}
	leader.Kill()
	if leader.Running() {
		t.Fatal("killed node still running")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Each attempt gets its own bound: a publish whose ack was lost with the leader waits
		// for its context, and ctx's is the whole test's.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := kv.Put(pctx, "k", []byte("v2"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("put after killing %s: %v", leader.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	leader.Restart()
	if _, err := c.WaitMetaLeader(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v2" {
		t.Fatalf("get after restart: %v %v", e, err)
	}
}
