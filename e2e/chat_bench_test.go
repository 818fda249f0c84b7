package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestChatBench runs `glasscast bench chat` briefly against a serve node: the load generator
// mints tokens through the API, connects, sends, and every message reaches every client of its
// room. (The figures in the README come from long runs of the same command.)
func TestChatBench(t *testing.T) {
	n := startChatServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "bench", "chat", "--url", n.chatURL(), "--api", n.endpoint(),
		"--rooms", "4", "--clients", "40", "--rate", "20", "--senders", "2", "--duration", "3s", "--server-pid", strconv.Itoa(n.cmd.Process.Pid))
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testAccessKey, "AWS_SECRET_ACCESS_KEY="+testSecret, "AWS_REGION="+testRegion)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench chat: %v\n%s", err, out)
	}
	report := string(out)
	t.Logf("bench chat report:\n%s", report)
	num := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(report)
		if m == nil {
			t.Fatalf("no %q in the report", re)
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	if c := num(`chat clients:\s+(\d+) connected of 40`); c != 40 {
		t.Fatalf("%d clients connected", c)
	}
	sent, delivered := num(`messages sent:\s+(\d+)`), num(`deliveries:\s+(\d+)`)
	if sent < 30 || delivered != sent*10 {
		t.Fatalf("sent %d, delivered %d: want every message at the 10 clients of its room", sent, delivered)
	}
	if !strings.Contains(report, "errors:            none") || !strings.Contains(report, "p99") || !strings.Contains(report, "KiB per connection") {
		t.Fatalf("report lacks errors/latency/memory lines")
	}
}
