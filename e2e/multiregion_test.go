package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bench"
	"glasscast/origin/llhlscheck"
)

// The two-region drill of DESIGN.md ("Scaling out, and across regions"), with real parts: a NATS
// cluster, every role in its own process, ffmpeg publishing over RTMPS, simulated LL-HLS viewers
// on every edge, and every link between the regions through a latencyProxy adding 40 ± 5 ms
// each way.
//
//	region a: nats a1, a2 · control · ingest · origin A · edge A · director
//	region b: nats b1     · origin B · edges B1, B2
//
// Each subtest is one drill on the shared topology; the destructive ones run last.

const (
	wanDelay  = 40 * time.Millisecond
	wanJitter = 5 * time.Millisecond
	// targetDuration is the segment target (TARGETDURATION) of the LOW-latency test stream.
	targetDuration = 2 * time.Second
	mrLinger       = 5 * time.Second // origin.linger: how long ENDLIST is served before 404
	regionHeader   = "X-Glasscast-Region"
	mrViewers      = 6 // per edge: 2 cores carry ffmpeg, eight glasscast processes and NATS too
)

// multiRegion is the running topology.
type multiRegion struct {
	t       *testing.T
	nats    *mrNATS
	control *node
	ingest  *node
	originA *node
	originB *node
	edgeA   *node
	edgeB1  *node
	edgeB2  *node
	dir     *node // the playback director; nil when this build has none

	ingestToB *latencyProxy   // the ingest's pushes to origin B
	wan       []*latencyProxy // every link between the regions, for the cut
	hooks     *hookReceiver

	c    *ivs.Client
	ch   *types.Channel
	pub  *publisher
	path string // playback path of the channel's multivariant playlist
}

// placed names a process (node names must differ: they key the node registry and live
// registrations) and places it in a region and zone.
func placed(name, region string) []string {
	return []string{"--node-name", name, "--node-region", region, "--node-zone", region + "1"}
}

func startMultiRegion(t *testing.T) *multiRegion {
	t.Helper()
	m := &multiRegion{t: t}
	m.nats = startMRNATS(t)
	m.wan = append(m.wan, m.nats.wan...)
	pushToken := "mr-push-token-0123456789abcdef"

	hookAddr := freePort(t)
	m.hooks = startHookReceiver(t, hookAddr)
	ctl := append(m.nats.controlJoin(), "--api-access-key-id", testAccessKey, "--api-secret-access-key", testSecret,
		"--events-webhooks", "http://"+hookAddr+"/ivs-events#types=stream-state",
		"--events-webhook-secret", webhookSecret, "--events-webhook-max-backoff", "1s")
	m.control = startRole(t, "control", append(ctl, placed("control-a", "a")...)...)
	m.c = m.control.ivsClient()

	// Origins first: their addresses are what the proxies and the ingest point at.
	origin := func(name, region string, join []string) (*node, string) {
		addr := freePort(t)
		args := append(join, "--origin-listen", addr, "--origin-push-token", pushToken, "--origin-linger", mrLinger.String())
		return startRole(t, "origin", append(args, placed(name, region)...)...), addr
	}
	var originA, originB string // their origin listeners
	m.originA, originA = origin("origin-a", "a", m.nats.joinA())
	m.originB, originB = origin("origin-b", "b", m.nats.joinB())
	m.ingestToB = m.wanLink(originB)
	edgeToB := m.wanLink(originB)
	edgeToA := m.wanLink(originA)

	rtmps := freePort(t)
	ing := append(m.nats.joinA(), "--ingest-rtmp-listen", freePort(t), "--ingest-rtmps-listen", rtmps,
		"--ingest-origin-urls", "http://"+originA+",http://"+m.ingestToB.Addr,
		"--origin-push-token", pushToken)
	// An origin back from a cut is retried within a second, so it is re-synchronised at the next
	// segment, two target durations at most; the 5 s default allows up to seven.
	ing = append(ing, "--ingest-push-retry-max", "1s")
	m.ingest = startRole(t, "ingest", append(ing, placed("ingest-a", "a")...)...)
	m.ingest.RTMPS = rtmps

	// Edges fill from their own region's origin and fail over to the other region's.
	edge := func(name, region string, join []string, upstreams ...string) *node {
		args := append(append(join, "--edge-upstream", strings.Join(upstreams, ",")), placed(name, region)...)
		httpAddr := freePort(t)
		args = append(args, "--edge-public-url", "http://"+httpAddr) // announced in the node registry
		return startRoleAt(t, "edge", httpAddr, args...)
	}
	m.edgeA = edge("edge-a", "a", m.nats.joinA(), "http://"+originA, "http://"+edgeToB.Addr)
	m.edgeB1 = edge("edge-b1", "b", m.nats.joinB(), "http://"+originB, "http://"+edgeToA.Addr)
	m.edgeB2 = edge("edge-b2", "b", m.nats.joinB(), "http://"+originB, "http://"+edgeToA.Addr)
	m.dir = startRole(t, "director", append(m.nats.joinA(), "--director-region-header", regionHeader,
		"--director-cidr-regions", "127.0.0.2/32=b", "--node-name", "director-a", "--node-region", "a")...)

	t.Cleanup(func() {
		if t.Failed() {
			m.dumpWarnings()
		}
	})

	ctx := ctxT(t, time.Minute)
	var key string
	m.ch, key = testChannel(t, ctx, m.c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, LatencyMode: types.ChannelLatencyModeLowLatency})
	m.path = strings.TrimPrefix(*m.ch.PlaybackUrl, m.control.endpoint())
	m.pub = publish(t, m.ingest.rtmpsURL(key), pubOptions{Size: "640x360"})
	waitLive(t, ctx, m.c, m.ch.Arn)
	for _, e := range m.edges() {
		waitPlayable(t, e.endpoint()+m.path)
	}
	return m
}

// startRoleAt is startRole on a chosen HTTP address, for a process that announces its own URL.
func startRoleAt(t *testing.T, role, httpAddr string, extra ...string) *node {
	t.Helper()
	n := &node{t: t, DataDir: t.TempDir(), HTTP: httpAddr, HTTPS: freePort(t)}
	n.args = append([]string{role, "--data-dir", n.DataDir, "--http-listen", n.HTTP, "--https-listen", n.HTTPS, "--log-level", "debug"}, extra...)
	n.start()
	t.Cleanup(n.stop)
	return n
}

// dumpWarnings logs each process's last warnings and errors, to tell why a drill failed.
func (m *multiRegion) dumpWarnings() {
	for _, p := range []struct {
		name string
		n    *node
	}{{"control", m.control}, {"ingest", m.ingest}, {"origin A", m.originA}, {"origin B", m.originB},
		{"edge A", m.edgeA}, {"edge B1", m.edgeB1}, {"edge B2", m.edgeB2}, {"director", m.dir}} {
		if p.n == nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(p.n.Logs(), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "Session Ended") || strings.Contains(l, "broadcast") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		m.t.Logf("--- %s: last warnings ---\n%s", p.name, strings.Join(lines, "\n"))
	}
	if m.nats.logs != nil {
		var lines []string
		for _, l := range strings.Split(m.nats.logs(), "\n") {
			if strings.Contains(l, "Error trying to connect to route") || strings.Contains(l, "Plaintext passwords") {
				continue // the cut's refused routes, and the test's plain password: noise here
			}
			if strings.HasPrefix(l, "---") || strings.Contains(l, "[ERR]") || strings.Contains(l, "[WRN]") || strings.Contains(l, "[FTL]") || strings.Contains(l, "panic") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 150 {
			lines = lines[len(lines)-150:]
		}
		m.t.Logf("--- NATS servers: warnings ---\n%s", strings.Join(lines, "\n"))
	}
}

// wanLink is a link between the regions to target (host:port).
func (m *multiRegion) wanLink(target string) *latencyProxy {
	p := newLatencyProxy(m.t, target, wanDelay, wanJitter)
	m.wan = append(m.wan, p)
	return p
}

func (m *multiRegion) channelID() string { return (*m.ch.Arn)[strings.LastIndex(*m.ch.Arn, "/")+1:] }

func (m *multiRegion) edges() []*node { return []*node{m.edgeA, m.edgeB1, m.edgeB2} }

// viewerRun is simulated viewers playing on one edge in the background.
type viewerRun struct {
	name string
	done chan struct{}
	rep  bench.ViewersReport
}

func startViewers(ctx context.Context, name, url string, n int, d time.Duration, header http.Header) *viewerRun {
	r := &viewerRun{name: name, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.rep, _ = bench.Viewers(ctx, bench.ViewersConfig{URL: url, Viewers: n, Duration: d, Ramp: time.Second, MaxErrorRate: 1, Header: header})
	}()
	return r
}

func (r *viewerRun) wait(t *testing.T) bench.ViewersReport {
	<-r.done
	t.Logf("viewers on %s:\n%s", r.name, r.rep)
	return r.rep
}

func errorCount(r bench.ViewersReport) int64 {
	var n int64
	for _, e := range r.Errors {
		n += e
	}
	return n
}

// onEveryEdge starts viewers on each live edge for d.
func (m *multiRegion) onEveryEdge(ctx context.Context, d time.Duration) map[*node]*viewerRun {
	runs := map[*node]*viewerRun{}
	names := map[*node]string{m.edgeA: "edge A", m.edgeB1: "edge B1", m.edgeB2: "edge B2"}
	for _, e := range m.edges() {
		select {
		case <-e.exited:
			continue
		default:
		}
		runs[e] = startViewers(ctx, names[e], e.endpoint()+m.path, mrViewers, d, nil)
	}
	return runs
}

func waitAll(t *testing.T, runs map[*node]*viewerRun) map[*node]bench.ViewersReport {
	out := map[*node]bench.ViewersReport{}
	for e, r := range runs {
		out[e] = r.wait(t)
	}
	return out
}

// newestPartEnd is when, by program-date-time, the newest part a media playlist lists ends.
func newestPartEnd(pl *llhlscheck.MediaPlaylist) time.Time {
	var end time.Time
	segs := pl.Segments
	if pl.Pending != nil {
		segs = append(segs[:len(segs):len(segs)], pl.Pending)
	}
	for _, s := range segs {
		start := s.PDT
		if start.IsZero() {
			start = end
		}
		t := start
		for _, p := range s.Parts {
			t = t.Add(time.Duration(p.Duration * float64(time.Second)))
		}
		if len(s.Parts) == 0 {
			t = t.Add(time.Duration(s.Duration * float64(time.Second)))
		}
		if t.After(end) {
			end = t
		}
	}
	return end
}

// edgePlaylist fetches an edge's media playlist: its status and, on 200, the parsed playlist.
func edgePlaylist(ctx context.Context, e *node, path string) (int, *llhlscheck.MediaPlaylist) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, mediaPlaylistURL(e.endpoint()+path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	b, err := readAll(resp)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	pl, err := llhlscheck.ParseMedia(b)
	if err != nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, pl
}

// waitFresh waits until the edge lists a part that ended after since, and returns when.
func waitFresh(ctx context.Context, e *node, path string, since time.Time, within time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, pl := edgePlaylist(ctx, e, path); pl != nil && newestPartEnd(pl).After(since) {
			return time.Now(), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, false
}

// TestMultiRegion runs the drills of the multi-region issue on one two-region topology. The
// figures it logs ("figure:" lines) are the ones docs/scaling.md quotes.
func TestMultiRegion(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-region drill: a NATS cluster, eight processes and ffmpeg (-short skips it)")
	}
	started := time.Now()
	m := startMultiRegion(t)
	ctx := ctxT(t, 5*time.Minute)
	t.Logf("figure: topology up in %v", time.Since(started).Round(100*time.Millisecond))
	stream, err := m.c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: m.ch.Arn})
	if err != nil {
		t.Fatal(err)
	}
	streamID := *stream.Stream.StreamId

	// Each drill starts from the one broadcast, still live: a drill that ended it fails, and
	// so do the drills after it, saying why.
	// After a partition heals, the live bucket may need a JetStream leader election before the
	// ingest's heartbeat lands again: GetStream may answer OFFLINE for seconds meanwhile (a
	// figure, not a failure), but the broadcast itself must come back within a live TTL or two.
	drill := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			asked := time.Now()
			for {
				out, err := m.c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: m.ch.Arn})
				if err == nil && *out.Stream.StreamId == streamID {
					break
				}
				if time.Since(asked) > 30*time.Second {
					t.Fatalf("the broadcast is no longer live at the start of the drill (GetStream: %v; the live bucket itself says: %s); an earlier drill ended it",
						err, m.nats.inspect(ctx, "glasscast_live", m.channelID()))
				}
				time.Sleep(250 * time.Millisecond)
			}
			if d := time.Since(asked); d > time.Second {
				t.Logf("figure: GetStream answered the broadcast as offline for %.1f s before the %s drill", d.Seconds(), name)
			}
			// Nor may a partition have had the session closed as if its ingest had died.
			sess, err := m.c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: m.ch.Arn, StreamId: &streamID})
			if err != nil || sess.StreamSession.EndTime != nil {
				t.Fatalf("the broadcast's stream session was closed before the %s drill (GetStreamSession: %v)", name, err)
			}
			f(t)
		})
	}
	drill("FarOrigin", func(t *testing.T) { m.drillFarOrigin(t, ctx) })
	drill("WANCut", func(t *testing.T) { m.drillWANCut(t, ctx, streamID) })
	drill("NearOriginKill", func(t *testing.T) { m.drillNearOriginKill(t, ctx) })
	drill("EdgeKill", func(t *testing.T) { m.drillEdgeKill(t, ctx) })
	drill("IngestKill", func(t *testing.T) { m.drillIngestKill(t, ctx, streamID) })
	// Last, since a JetStream failover holds up every write for seconds (live registrations,
	// the node registry) and would spoil the drills above it.
	t.Run("NATSNodeKill", func(t *testing.T) { m.drillNATSNodeKill(t, ctx) })
	t.Logf("figure: whole multi-region test %v", time.Since(started).Round(time.Second))
}

// drillFarOrigin: the far origin's link slowing from 0 to 150 ms one way must not slow the near
// region, since the ingest feeds each origin through its own queue.
func (m *multiRegion) drillFarOrigin(t *testing.T, ctx context.Context) {
	measure := func(delay time.Duration) bench.ViewersReport {
		m.ingestToB.SetDelay(delay, 0)
		time.Sleep(time.Second) // let parts already in flight drain
		runs := m.onEveryEdge(ctx, 12*time.Second)
		reps := waitAll(t, runs)
		return reps[m.edgeA]
	}
	// A far origin that held up the near one would add at least 150 ms to every part, and more
	// for each round trip of a push; the margins leave room for the noise of two shared cores,
	// and a pair spoilt by a hiccup of the whole machine (every edge late at once) is measured
	// again once.
	slowed := func(at0, at150 bench.ViewersReport) string {
		switch {
		case at150.DelayP50 > at0.DelayP50+100*time.Millisecond:
			return fmt.Sprintf("part delay p50 %v → %v", at0.DelayP50, at150.DelayP50)
		case at150.DelayP99 > at0.DelayP99+targetDuration/2:
			return fmt.Sprintf("part delay p99 %v → %v", at0.DelayP99, at150.DelayP99)
		}
		return ""
	}
	at0 := measure(0)
	at150 := measure(150 * time.Millisecond)
	if why := slowed(at0, at150); why != "" {
		t.Logf("a 150 ms far origin slowed the near region (%s); measuring again in case it was noise", why)
		at0 = measure(0)
		at150 = measure(150 * time.Millisecond)
	}
	m.ingestToB.SetDelay(wanDelay, wanJitter)
	ratio := func(a, b time.Duration) float64 { return float64(b) / float64(max(a, time.Millisecond)) }
	t.Logf("figure: near-region (edge A) part delay with the far origin at 0 ms: p50 %v p99 %v; at 150 ms one way: p50 %v p99 %v; ratio p50 %.2f p99 %.2f",
		at0.DelayP50.Round(time.Millisecond), at0.DelayP99.Round(time.Millisecond),
		at150.DelayP50.Round(time.Millisecond), at150.DelayP99.Round(time.Millisecond),
		ratio(at0.DelayP50, at150.DelayP50), ratio(at0.DelayP99, at150.DelayP99))
	if errorCount(at0)+errorCount(at150) > 0 {
		t.Errorf("edge A viewers saw errors: %v, %v", at0.Errors, at150.Errors)
	}
	if at0.Parts == 0 || at150.Parts == 0 {
		t.Fatalf("edge A viewers received no parts")
	}
	if why := slowed(at0, at150); why != "" {
		t.Errorf("a 150 ms far origin slowed the near region: %s", why)
	}
}

// drillWANCut: cutting every link between the regions for 10 s leaves region a playing without
// an error, and region b serves new parts soon after the links return, while the broadcaster
// keeps its one connection and stream session.
func (m *multiRegion) drillWANCut(t *testing.T, ctx context.Context, streamID string) {
	runs := m.onEveryEdge(ctx, 18*time.Second)
	time.Sleep(3 * time.Second)
	for _, p := range m.wan {
		p.Cut()
	}
	time.Sleep(10 * time.Second)
	restored := time.Now()
	for _, p := range m.wan {
		p.Restore()
	}
	var worst time.Duration
	deadline := restored.Add(30 * time.Second)
	for _, e := range []*node{m.edgeB1, m.edgeB2} {
		at, ok := waitFresh(ctx, e, m.path, restored, time.Until(deadline))
		if !ok {
			t.Errorf("edge %s lists no part made after the links came back, 30 s on", e.HTTP)
			continue
		}
		worst = max(worst, at.Sub(restored))
	}
	t.Logf("figure: region b serves new parts %.1f s after the WAN links return (10 s cut)", worst.Seconds())
	if worst > 2*targetDuration+time.Second {
		t.Errorf("region b served new parts %v after the restore, want within two target durations (%v) and a second of slack", worst, 2*targetDuration)
	}
	reps := waitAll(t, runs)
	if n := errorCount(reps[m.edgeA]); n > 0 {
		t.Errorf("region a viewers saw %d errors while region b was cut off: %v", n, reps[m.edgeA].Errors)
	}
	select {
	case <-m.pub.exited:
		t.Fatalf("ffmpeg stopped during the cut:\n%s", m.pub.output())
	default:
	}
	out, err := m.c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: m.ch.Arn})
	if err != nil || *out.Stream.StreamId != streamID {
		t.Errorf("after the cut GetStream says %v (err %v), want the same stream session %s; the live bucket itself says: %s",
			out, err, streamID, m.nats.inspect(ctx, "glasscast_live", m.channelID()))
	}
}

// drillNATSNodeKill: a NATS node killed with -9 loses no write; the control API keeps answering.
func (m *multiRegion) drillNATSNodeKill(t *testing.T, ctx context.Context) {
	m.nats.kill(1) // a2: the cluster keeps a majority (a1, b1)
	defer m.nats.restart(1)
	killed := time.Now()
	var slowest time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		if _, err := m.c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: strPtr(fmt.Sprintf("mr-nats-kill-%d", i))}); err != nil {
			t.Fatalf("CreateChannel %d with a NATS node down: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("figure: kill -9 of a NATS server: 5 CreateChannel calls succeeded %.1f s after it, the slowest taking %.1f s", time.Since(killed).Seconds(), slowest.Seconds())
	// The broadcast ended in the drill before; reads answer as before.
	if _, err := m.c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: m.ch.Arn}); err != nil && errorCode(err) != "ChannelNotBroadcasting" {
		t.Errorf("GetStream with a NATS node down: %v", err)
	}
}

func strPtr(s string) *string { return &s }

// drillNearOriginKill: origin A dies (kill -9); region a's viewers carry on from origin B
// without an error and without a stall as long as a target duration.
func (m *multiRegion) drillNearOriginKill(t *testing.T, ctx context.Context) {
	runs := m.onEveryEdge(ctx, 15*time.Second)
	time.Sleep(5 * time.Second)
	m.originA.kill()
	reps := waitAll(t, runs)
	a := reps[m.edgeA]
	// Region b fills from origin B, which origin A's death does not touch: what its viewers
	// stall is the source's (ffmpeg or the ingest starved of CPU on a loaded machine), not the
	// failover's.
	bStall := max(reps[m.edgeB1].StallP99, reps[m.edgeB2].StallP99)
	t.Logf("figure: kill -9 of the near origin: region-a viewer longest stall p50 %v p99 %v max %v, part delay p99 %v, errors %d (region b, not failing over, stalled p99 %v)",
		a.StallP50.Round(time.Millisecond), a.StallP99.Round(time.Millisecond), a.StallMax.Round(time.Millisecond),
		a.DelayP99.Round(time.Millisecond), errorCount(a), bStall.Round(time.Millisecond))
	if n := errorCount(a); n > 0 {
		t.Errorf("region a viewers saw %d errors when origin A died: %v", n, a.Errors)
	}
	if a.StallP99 >= targetDuration && a.StallP99 >= bStall+targetDuration {
		t.Errorf("region a viewers stalled %v (p99) when origin A died, want under one target duration (%v) more than region b's %v",
			a.StallP99, targetDuration, bStall)
	}
	if a.Parts < int64(mrViewers)*8*5 { // at least 8 s of 0.2 s parts per viewer
		t.Errorf("region a viewers received only %d parts in 15 s", a.Parts)
	}
}

// drillEdgeKill: edge B1 dies (kill -9); the director stops sending region b's viewers there and
// sends them to B2, where they play without an error.
func (m *multiRegion) drillEdgeKill(t *testing.T, ctx context.Context) {
	asB := http.Header{regionHeader: {"b"}}
	// Before: the director sends region b to B1 or B2, never to A (waiting out the registry
	// heartbeats an earlier drill may have held up). The edge it sends viewers to is killed.
	var victim, survivor *node
	for deadline := time.Now().Add(20 * time.Second); victim == nil; time.Sleep(200 * time.Millisecond) {
		switch got, why := m.directedWhy(ctx, asB); got {
		case m.edgeB1.HTTP:
			victim, survivor = m.edgeB1, m.edgeB2
		case m.edgeB2.HTTP:
			victim, survivor = m.edgeB2, m.edgeB1
		default:
			if time.Now().After(deadline) {
				t.Fatalf("the director sent a region-b viewer to %q (%s), want edge B1 (%s) or B2 (%s)", got, why, m.edgeB1.HTTP, m.edgeB2.HTTP)
			}
		}
	}
	runs := m.onEveryEdge(ctx, 12*time.Second)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	victim.kill()
	// The director has stopped sending viewers to the dead edge once ten answers in a row send
	// them to the other edge of their region.
	var stopped time.Duration
	var last string
	for clean := 0; clean < 10; time.Sleep(100 * time.Millisecond) {
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("60 s after kill -9 of edge %s the director still does not send region-b viewers to %s: %s", victim.HTTP, survivor.HTTP, last)
		}
		got, why := m.directedWhy(ctx, asB)
		if got != survivor.HTTP {
			clean, stopped, last = 0, 0, fmt.Sprintf("%q %s", got, why)
			continue
		}
		if clean == 0 {
			stopped = time.Since(killed)
		}
		clean++
	}
	t.Logf("figure: the director stops sending viewers to a killed edge %.1f s after its kill -9", stopped.Seconds())
	waitAll(t, runs)
	// Region b's viewers, through the director, now play from the other edge without an error.
	rep := startViewers(ctx, "director (region b)", m.dir.endpoint()+m.path, mrViewers, 6*time.Second, asB).wait(t)
	if n := errorCount(rep); n > 0 || rep.Parts == 0 {
		got, why := m.directedWhy(ctx, asB)
		logs := m.dir.Logs()
		t.Errorf("region-b viewers sent by the director: %d errors, %d parts; the director now answers %q %s; its log ends:\n%s",
			n, rep.Parts, got, why, logs[max(0, len(logs)-3000):])
	}
}

// directed asks the director for the channel as a viewer with header, and returns the edge's
// host:port it was sent to ("" if none).
func (m *multiRegion) directed(ctx context.Context, header http.Header) string {
	got, _ := m.directedWhy(ctx, header)
	return got
}

// directedWhy is directed with the director's answer when it names no edge.
func (m *multiRegion) directedWhy(ctx context.Context, header http.Header) (string, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.dir.endpoint()+m.path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return "", err.Error()
	}
	b, _ := readAll(resp)
	where := resp.Header.Get("Location") + "\n" + string(b)
	for _, e := range []*node{m.edgeA, m.edgeB1, m.edgeB2} {
		if strings.Contains(where, "//"+e.HTTP+"/") {
			return e.HTTP, ""
		}
	}
	return "", fmt.Sprintf("%s, reason %q: %.200s", resp.Status, resp.Header.Get("X-Glasscast-Reason"), b)
}

// drillIngestKill: the ingest dies (kill -9). The channel goes OFFLINE within the live TTL, every
// edge lists ENDLIST and then answers 404, the stream session is closed, and the events go out.
func (m *multiRegion) drillIngestKill(t *testing.T, ctx context.Context, streamID string) {
	runs := m.onEveryEdge(ctx, 6*time.Second)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	m.ingest.kill()
	var live []*node
	for _, e := range m.edges() {
		select {
		case <-e.exited:
		default:
			live = append(live, e)
		}
	}
	type seen struct{ endlist, gone time.Duration }
	res := make([]seen, len(live))
	var wg sync.WaitGroup
	for i, e := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(killed) < 60*time.Second && ctx.Err() == nil {
				code, pl := edgePlaylist(ctx, e, m.path)
				if pl != nil && pl.Ended && res[i].endlist == 0 {
					res[i].endlist = time.Since(killed)
				}
				if code == http.StatusNotFound {
					res[i].gone = time.Since(killed)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	waitOffline(t, ctx, m.c, m.ch.Arn, 40*time.Second)
	offline := time.Since(killed)
	wg.Wait()
	waitAll(t, runs)
	var endlist, gone time.Duration
	for i, e := range live {
		if res[i].endlist == 0 {
			t.Errorf("edge %s never listed EXT-X-ENDLIST after the ingest died", e.HTTP)
		}
		if res[i].gone == 0 {
			t.Errorf("edge %s did not answer 404 within 60 s of the ingest's death", e.HTTP)
		}
		endlist, gone = max(endlist, res[i].endlist), max(gone, res[i].gone)
	}
	t.Logf("figure: kill -9 of the ingest: OFFLINE after %.1f s, ENDLIST on every edge after %.1f s, 404 after %.1f s (origin.linger %v)",
		offline.Seconds(), endlist.Seconds(), gone.Seconds(), mrLinger)
	if offline > 15*time.Second+5*time.Second {
		t.Errorf("OFFLINE %v after the ingest died, want within the live TTL (15 s) and some slack", offline)
	}
	// The session is closed (by the control's reaper: the ingest that would close it is dead)
	// with a Stream Failure event, and the stream-state events reach the webhook.
	id := m.channelID()
	var closedAt, eventsAt time.Duration
	var sessErr error
	var sessEvents, hookEvents []string
	for deadline := killed.Add(60 * time.Second); (closedAt == 0 || eventsAt == 0) && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if closedAt == 0 {
			sess, err := m.c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: m.ch.Arn, StreamId: &streamID})
			if sessErr = err; err == nil {
				sessEvents = sessEvents[:0]
				for _, e := range sess.StreamSession.TruncatedEvents {
					sessEvents = append(sessEvents, aws.ToString(e.Name))
				}
				if sess.StreamSession.EndTime != nil && slices.Contains(sessEvents, "Stream Failure") {
					closedAt = time.Since(killed)
				}
			}
		}
		if eventsAt == 0 {
			if hookEvents = m.hooks.names(id); slices.Contains(hookEvents, "Stream End") {
				eventsAt = time.Since(killed)
			}
		}
	}
	if closedAt == 0 {
		t.Errorf("60 s after the ingest died its stream session is not closed with a Stream Failure event (GetStreamSession: %v; events %q)", sessErr, sessEvents)
	}
	if eventsAt == 0 {
		t.Errorf("60 s after the ingest died no Stream End event reached the webhook: %q", hookEvents)
	}
	t.Logf("figure: kill -9 of the ingest: stream session closed after %.1f s (events %q); webhook events %q, Stream End after %.1f s",
		closedAt.Seconds(), sessEvents, hookEvents, eventsAt.Seconds())
}

// mrNATS is the NATS side of the topology: the flags that join a process in each region, and
// the links between the regions' NATS nodes.
type mrNATS struct {
	control     []string // flags joining the control process
	a, b        []string // flags joining a process in region a, b
	wan         []*latencyProxy
	killNode    func(i int) // nil without a cluster
	restartNode func(i int)
	js          jetstream.JetStream // a client of the cluster's own, to tell a lost record from a stale cache
	logs        func() string       // every NATS server's log
}

// inspect describes what the cluster holds under key in bucket, read directly.
func (n *mrNATS) inspect(ctx context.Context, bucket, key string) string {
	if n.js == nil {
		return "(no cluster)"
	}
	kv, err := n.js.KeyValue(ctx, bucket)
	if err != nil {
		return "bucket: " + err.Error()
	}
	var hist []string
	entries, err := kv.History(ctx, key)
	for _, e := range entries {
		hist = append(hist, fmt.Sprintf("rev %d %s at %s", e.Revision(), e.Operation(), e.Created().Format("15:04:05.000")))
	}
	cluster := "?"
	if st, err := n.js.Stream(ctx, "KV_"+bucket); err == nil {
		if info, err := st.Info(ctx); err == nil && info.Cluster != nil {
			cluster = "leader " + info.Cluster.Leader
			for _, r := range info.Cluster.Replicas {
				cluster += fmt.Sprintf(", %s current=%v lag=%d", r.Name, r.Current, r.Lag)
			}
		}
	}
	return fmt.Sprintf("history %v (err %v); %s", hist, err, cluster)
}

func (n *mrNATS) controlJoin() []string { return append([]string(nil), n.control...) }
func (n *mrNATS) joinA() []string       { return append([]string(nil), n.a...) }
func (n *mrNATS) joinB() []string       { return append([]string(nil), n.b...) }
func (n *mrNATS) kill(i int)            { n.killNode(i) }
func (n *mrNATS) restart(i int)         { n.restartNode(i) }

// startMRNATS starts a three-node NATS cluster, a1 and a2 in region a and b1 in region b, with
// every route between the regions through a WAN link. Region a's processes connect to a1 and
// a2, region b's to b1.
func startMRNATS(t *testing.T) *mrNATS {
	n := &mrNATS{}
	region := []string{"a", "a", "b"}
	c := startNATSCluster(t, natsClusterConfig{
		Nodes: []natsNodeConfig{{Name: "a1", Tags: []string{"region:a"}}, {Name: "a2", Tags: []string{"region:a"}}, {Name: "b1", Tags: []string{"region:b"}}},
		RouteAddr: func(from, to int, addr string) string {
			if region[from] == region[to] {
				return addr
			}
			p := newLatencyProxy(t, addr, wanDelay, wanJitter)
			n.wan = append(n.wan, p)
			return p.Addr
		},
	})
	auth := []string{"--nats-user", c.User, "--nats-password", c.Password, "--nats-replicas", "3"}
	n.a = append([]string{"--nats-url", c.Nodes[0].ClientURL() + "," + c.Nodes[1].ClientURL()}, auth...)
	n.b = append([]string{"--nats-url", c.Nodes[2].ClientURL()}, auth...)
	n.control = n.a
	n.killNode = func(i int) { c.Nodes[i].Kill() }
	n.restartNode = func(i int) { c.Nodes[i].Restart() }
	n.logs = c.Logs
	if js, err := jetstream.New(c.Connect(t)); err == nil {
		n.js = js
	}
	return n
}
