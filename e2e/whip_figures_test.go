package e2e

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestWHIPFigures measures, in one run of one `serve`, a WHIP-fed channel (Chromium's fake
// camera on the Go live page, H.264 passed through, Opus → AAC) against an RTMP-fed one
// (ffmpeg's test pattern): how far behind the wall clock hls.js plays each (program-date-time
// is the ingest's arrival clock, so this is ingest-to-screen latency plus the player's
// buffer), and the serve process's CPU per publisher, its ffmpeg children included, with one
// hls.js viewer each. It is a measurement, run on demand:
//
//	GLASSCAST_FIGURES=1 go test -count=1 -run TestWHIPFigures -v ./e2e/
func TestWHIPFigures(t *testing.T) {
	if os.Getenv("GLASSCAST_FIGURES") == "" {
		t.Skip("a measurement: set GLASSCAST_FIGURES=1 to run it")
	}
	needBrowser(t)
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 8*time.Minute) // shared cores can make it slow
	const seconds = 20

	// RTMP: ffmpeg publishes, hls.js plays.
	rch, rkey := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("rtmp"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	pub := publish(t, n.rtmpURL(rkey), pubOptions{Size: "640x360"}) // about what the fake camera sends
	waitLive(t, ctx, c, rch.Arn)
	waitPlayable(t, *rch.PlaybackUrl)
	cpu0, wall0 := procCPU(t, n), time.Now()
	var rtmpBehind []float64
	nodeScript(t, func(m map[string]json.RawMessage) {
		if raw, ok := m["sample"]; ok {
			var s playerSample
			_ = json.Unmarshal(raw, &s)
			if s.BehindWallClock != nil && s.CurrentTime > 2 {
				rtmpBehind = append(rtmpBehind, *s.BehindWallClock)
			}
		}
	}, "player.mjs", n.endpoint()+"/player/"+chIDOf(rch), strconv.Itoa(seconds), "")
	rtmpCPU := (procCPU(t, n) - cpu0).Seconds() / time.Since(wall0).Seconds()
	pub.stop()
	waitOffline(t, ctx, c, rch.Arn, 15*time.Second)

	// WHIP: the Go live page publishes, hls.js plays.
	wch, wkey := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("whip"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	var whipBehind []float64
	var liveAt, stoppedAt time.Time
	var cpu1 time.Duration
	nodeScript(t, func(m map[string]json.RawMessage) {
		switch {
		case m["live"] != nil:
			liveAt, cpu1 = time.Now(), procCPU(t, n)
		case m["sample"] != nil:
			var s whipSample
			_ = json.Unmarshal(m["sample"], &s)
			if s.BehindWallClock != nil && s.CurrentTime > 2 {
				whipBehind = append(whipBehind, *s.BehindWallClock)
			}
		case m["stopped"] != nil:
			stoppedAt = time.Now()
		}
	}, "whip.mjs", n.endpoint()+"/player/go-live", wkey, "sk_wrong", n.endpoint()+"/player/"+chIDOf(wch), *wch.PlaybackUrl, strconv.Itoa(seconds))
	// The audio transcoder's CPU counts once the session has ended and ffmpeg was reaped.
	waitOffline(t, ctx, c, wch.Arn, 15*time.Second)
	whipCPU := (procCPU(t, n) - cpu1).Seconds() / stoppedAt.Sub(liveAt).Seconds()

	if len(rtmpBehind) < 10 || len(whipBehind) < 10 {
		t.Fatalf("too few samples: RTMP %d, WHIP %d", len(rtmpBehind), len(whipBehind))
	}
	t.Logf("behind wall clock in hls.js (s): RTMP median %.2f (p10 %.2f, p90 %.2f); WHIP median %.2f (p10 %.2f, p90 %.2f)",
		pct(rtmpBehind, 50), pct(rtmpBehind, 10), pct(rtmpBehind, 90), pct(whipBehind, 50), pct(whipBehind, 10), pct(whipBehind, 90))
	t.Logf("serve CPU with one publisher and one viewer: RTMP %.1f%% of a core, WHIP %.1f%% (its ffmpeg Opus→AAC included)", rtmpCPU*100, whipCPU*100)
}

func chIDOf(ch *types.Channel) string { return (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:] }

func pct(v []float64, p int) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// procCPU is the CPU time of the node's process and its reaped children (/proc/<pid>/stat).
func procCPU(t *testing.T, n *node) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(n.cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime (fields 14-17)
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
