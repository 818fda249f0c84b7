package e2e

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConsoleFigures measures what the console costs: a cold first load (bytes on the wire,
// time to a usable sign-in form) and the server's CPU while ten consoles watch a live channel
// page, against the same publish with no console open. Figures only, so it runs on request:
//
//	GLASSCAST_CONSOLE_FIGURES=1 go test -count=1 -v -run TestConsoleFigures ./e2e/
func TestConsoleFigures(t *testing.T) {
	if os.Getenv("GLASSCAST_CONSOLE_FIGURES") == "" {
		t.Skip("figures only: set GLASSCAST_CONSOLE_FIGURES=1")
	}
	needBrowser(t)
	n := startServe(t, "")
	ctx := ctxT(t, 3*time.Minute)
	ch, err := n.ivsClient().CreateChannel(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := publish(t, "rtmps://"+n.RTMPS+"/app/"+*ch.StreamKey.Value, pubOptions{Size: "640x360"})
	defer pub.stop()
	time.Sleep(5 * time.Second)
	const window = 20 * time.Second
	idle := serverCPU(t, n, window)
	t.Logf("server CPU, publishing, no console: %.1f%% of one core", idle)
	os.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	id := (*ch.Channel.Arn)[strings.LastIndex(*ch.Channel.Arn, "/")+1:]
	nodeScript(t, func(m map[string]json.RawMessage) {
		for k, v := range m {
			t.Logf("%s: %s", k, v)
			if k == "ready" {
				t.Logf("server CPU, ten consoles on the live channel page: %.1f%% of one core (no console: %.1f%%)", serverCPU(t, n, window), idle)
			}
		}
	}, "console_watch.mjs", "http://"+n.HTTP+"/console/", id, "10", "1")
}

// serverCPU is the glasscast process's CPU (user+system) over d, in percent of one core.
func serverCPU(t *testing.T, n *node, d time.Duration) float64 {
	t.Helper()
	ticks := func() float64 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(n.cmd.Process.Pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseFloat(f[11], 64) // utime, field 14
		s, _ := strconv.ParseFloat(f[12], 64) // stime, field 15
		return u + s
	}
	a, t0 := ticks(), time.Now()
	time.Sleep(d)
	return (ticks() - a) / 100 / time.Since(t0).Seconds() * 100 // USER_HZ is 100 on Linux
}
