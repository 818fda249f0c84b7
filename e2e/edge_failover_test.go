package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"glasscast/bench"
)

// TestEdgeRegionFailover: an ingest pushes to an origin in region a (serve's) and one in
// region b (a `glasscast origin`), listed a first. An edge in region b that discovers them
// through the live registration fills from origin b; after kill -9 of origin b it falls over
// to origin a with no viewer error, and dials the dead origin about once per probe interval
// instead of once per request (today every request tried it first: 276 "upstream failed"
// lines in the drill).
func TestEdgeRegionFailover(t *testing.T) {
	natsAddr, originA, originB := freePort(t), freePort(t), freePort(t)
	a := startServe(t, "", "--nats-listen", natsAddr, "--origin-listen", originA, "--node-region", "a", "--node-name", "serve-a",
		"--ingest-origin-urls", "http://"+originA+",http://"+originB)
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, a)...)
	ob := startRole(t, "origin", append(join, "--origin-listen", originB, "--node-region", "b", "--node-name", "origin-b")...)
	eb := startRole(t, "edge", append(join, "--node-region", "b", "--node-name", "edge-b")...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edge b log:\n%s", tail(eb.Logs(), 6000))
		}
	})

	c := a.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	publish(t, a.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	url := eb.endpoint() + strings.TrimPrefix(*ch.PlaybackUrl, a.endpoint())
	waitPlayable(t, url)

	// Ten viewers on edge b for 12 s; origin b dies after 5.
	const viewers, d = 10, 12 * time.Second
	done := make(chan bench.ViewersReport, 1)
	go func() {
		rep, _ := bench.Viewers(context.Background(), bench.ViewersConfig{URL: url, Viewers: viewers, Duration: d, Ramp: time.Second, MaxErrorRate: 1})
		done <- rep
	}()
	time.Sleep(5 * time.Second)
	before := strings.Count(eb.Logs(), "upstream failed")
	ob.kill()
	killed := time.Now()
	rep := <-done
	after := time.Since(killed)
	logs := eb.Logs()
	failed := strings.Count(logs, "upstream failed") - before
	t.Logf("edge b, %d viewers for %v, origin b killed after 5 s:\n%s", viewers, d, rep)
	t.Logf("requests that tried dead origin b in the %v after the kill: %d (log lines 'upstream failed')", after.Round(time.Millisecond), failed)
	if n := sumErrors(rep); n != 0 {
		t.Fatalf("%d viewer errors when origin b died:\n%s", n, rep)
	}
	if rep.Parts < viewers*int64(d/time.Second) {
		t.Fatalf("viewers received only %d parts in %v\n%s", rep.Parts, d, rep)
	}
	// Once the breaker opens, only the fills already under way when the origin died (about one
	// per viewer) and none of the later ones try it.
	if failed > 3*viewers {
		t.Fatalf("%d requests tried the dead origin in %v", failed, after)
	}
	// The breaker opened for origin b: edge b was filling from it, although the ingest (and so
	// the live registration) lists origin a first.
	opened := false
	for _, line := range strings.Split(logs, "\n") {
		opened = opened || strings.Contains(line, "skipping it until a probe answers") && strings.Contains(line, "upstream=http://"+originB+" ")
	}
	if !opened {
		t.Fatalf("edge b never opened the breaker for origin b: it was not filling from its own region's origin")
	}
}

func sumErrors(r bench.ViewersReport) int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}
