package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startEdge runs `glasscast edge` joined to a serve node's NATS: a second edge in its own process.
func startEdge(t *testing.T, natsURL string, login ...string) *node {
	t.Helper()
	n := &node{t: t, DataDir: t.TempDir(), HTTP: freePort(t)}
	n.args = []string{"edge", "--data-dir", n.DataDir, "--http-listen", n.HTTP, "--https-listen", "",
		"--nats-url", natsURL, "--node-name", "edge2", "--log-level", "debug"}
	n.args = append(n.args, login...)
	n.start()
	t.Cleanup(n.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edge log:\n%s", n.Logs())
		}
	})
	return n
}

// TestChatNode runs the Node tests in e2e/chatjs: the real amazon-ivs-chat-messaging 1.1.1 SDK
// and @aws-sdk/client-ivschat against a serve node and a second edge process joined by NATS,
// once with the `ws` polyfill and once with Node's own (undici) WebSocket.
func TestChatNode(t *testing.T) {
	dir, err := filepath.Abs("chatjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "amazon-ivs-chat-messaging")); err != nil {
		t.Fatalf("e2e/chatjs has no node_modules: run `bash .ci/deps` (npm ci in e2e/chatjs): %v", err)
	}
	natsAddr := freePort(t)
	n := startChatServe(t, "--nats-listen", natsAddr, "--https-listen", "")
	edge2 := startEdge(t, "nats://"+natsAddr, natsLogin(t, n)...)
	for _, mode := range []struct{ name, ws string }{{"ws-polyfill", "ws"}, {"experimental-websocket", "undici"}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--test", "--test-reporter=spec", "chat.test.js", "session.test.js"}
			if mode.ws == "undici" {
				args = append([]string{"--experimental-websocket", "--no-warnings"}, args...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"CHAT_WS="+mode.ws,
				"GLASSCAST_ENDPOINT="+n.endpoint(),
				"CHAT_URL="+n.chatURL(),
				"CHAT_URL2="+edge2.chatURL(),
				"GLASSCAST_DATA_DIR="+n.DataDir,
				"AWS_REGION="+testRegion,
				"AWS_ACCESS_KEY_ID="+testAccessKey,
				"AWS_SECRET_ACCESS_KEY="+testSecret,
			)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "ℹ fail 0") || strings.Contains(string(out), "ℹ pass 0") {
				t.Fatalf("node --test (%s): %v\n%s", mode.ws, err, out)
			}
			t.Logf("node --test (%s):\n%s", mode.ws, out)
		})
	}
}
