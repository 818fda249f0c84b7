package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// browserDir holds the Node scripts that drive Debian's Chromium with playwright-core.
const browserDir = "browser"

// needBrowser fails (not skips) when the browser test tools are missing: make deps installs
// them, and CI must run these tests.
func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("Debian chromium is not installed (make deps installs it)")
	}
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core")); err != nil {
		t.Fatal("playwright-core is not installed in e2e/browser (make deps runs npm ci there)")
	}
}

// artifactDir is where browser tests leave screenshots for people to look at.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GLASSCAST_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// nodeScript runs a browser script and hands each JSON line it prints to onLine. It returns
// when the script exits.
func nodeScript(t *testing.T, onLine func(map[string]json.RawMessage), script string, args ...string) {
	t.Helper()
	cmd := exec.Command("node", append([]string{script}, args...)...)
	cmd.Dir = browserDir
	cmd.Stderr = &prefixWriter{t: t, prefix: script + ": "}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			onLine(m)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
}

// prefixWriter logs a child's stderr through the test, keeping only the last lines.
type prefixWriter struct {
	t      *testing.T
	prefix string
	lines  int
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	if w.lines < 200 {
		w.t.Log(w.prefix + string(b))
		w.lines++
	}
	return len(b), nil
}
