package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"glasscast/bench"
	"glasscast/events"
)

const webhookSecret = "whsec_Z2xhc3NjYXN0LWUyZS13ZWJob29rLXNlY3JldC0wMDE="

// hookReceiver is a webhook endpoint that verifies every request as a receiver following
// Standard Webhooks would, and records the events in arrival order.
type hookReceiver struct {
	t    *testing.T
	addr string
	srv  *http.Server

	mu     sync.Mutex
	events []events.Event
	bad    []string
}

func startHookReceiver(t *testing.T, addr string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{t: t}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after a previous receiver closed
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve)}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(h.stop)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fail := func(why string) {
		h.mu.Lock()
		h.bad = append(h.bad, why)
		h.mu.Unlock()
		http.Error(w, why, http.StatusBadRequest)
	}
	if err := events.Verify(webhookSecret, r.Header.Get, body, time.Now(), 5*time.Minute); err != nil {
		fail("signature: " + err.Error())
		return
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		fail("body: " + err.Error())
		return
	}
	for _, k := range []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"} {
		if _, ok := raw[k]; !ok {
			fail("envelope lacks " + k)
			return
		}
	}
	var ev events.Event
	_ = json.Unmarshal(body, &ev)
	if ev.Version != "0" || ev.Source != "aws.ivs" || ev.Account != testAccount || ev.Region != testRegion || ev.ID != r.Header.Get("webhook-id") {
		fail("envelope values: " + string(body))
		return
	}
	if _, err := time.Parse(time.RFC3339, ev.Time); err != nil || strings.Contains(ev.Time, ".") {
		fail("time " + ev.Time)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) stop() { _ = h.srv.Close() }

// names returns the event_name of the channel's events, in arrival order.
func (h *hookReceiver) names(channel string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if ev.ChannelID() != channel {
			continue
		}
		var d struct {
			EventName string `json:"event_name"`
		}
		_ = json.Unmarshal(ev.Detail, &d)
		out = append(out, d.EventName)
	}
	return out
}

func (h *hookReceiver) waitNames(channel string, want []string, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for !slices.Equal(h.names(channel), want) {
		if time.Now().After(deadline) {
			h.t.Fatalf("webhook got %q for %s, want %q (bad requests: %v)", h.names(channel), channel, want, h.bad)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The proof: a live channel with simulated viewers, read back through every client
// CloudWatch users have, webhooks that see the stream's life once each across a receiver
// outage and a server restart, and /metrics that Prometheus parses.
func TestMonitoring(t *testing.T) {
	hookAddr := freePort(t)
	natsAddr := freePort(t)
	rcv := startHookReceiver(t, hookAddr)
	n := startServe(t, "",
		"--events-webhooks", "http://"+hookAddr+"/ivs-events#types=stream-state",
		"--events-webhook-secret", webhookSecret,
		"--events-webhook-max-backoff", "1s",
		"--metrics-token", metricsToken,
		"--nats-listen", natsAddr)
	ctx := ctxT(t, 5*time.Minute)
	c := n.ivsClient()
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("monitored"), Type: types.ChannelTypeBasicChannelType,
		InsecureIngest: true})
	id := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]

	// Constant bit rate (x264's HRD CBR with filler) makes "the ffmpeg bitrate" well defined.
	const videoBitrate = 2_500_000
	pub := publish(t, n.rtmpURL(key), pubOptions{Extra: []string{"-b:v", "2500k", "-minrate", "2500k", "-maxrate", "2500k",
		"-bufsize", "2500k", "-x264-params", "nal-hrd=cbr"}})
	waitLive(t, ctx, c, ch.Arn)
	liveAt := time.Now()

	// `glasscast events tail` from a terminal sees the same events.
	tail := exec.CommandContext(ctx, binary, append([]string{"events", "tail", "--nats-url", "nats://" + natsAddr, "--since", "5m", "--count", "2",
		"--channels", id}, natsLogin(t, n)...)...)
	tailOut, err := tail.Output()
	if err != nil {
		t.Fatalf("events tail: %v\n%s", err, tailOut)
	}
	if lines := strings.Split(strings.TrimSpace(string(tailOut)), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], `"Session Created"`) || !strings.Contains(lines[1], `"Stream Start"`) {
		t.Fatalf("events tail printed:\n%s", tailOut)
	}

	// Simulated viewers through the edge, once there is something to play. The readiness polls
	// are one viewer session ("vs"), which the edges forget after their 10 s window: the
	// viewers start after that, so the count never exceeds them.
	waitPlayable(t, *ch.PlaybackUrl+"?vs=readiness-probe")
	// A channel is LIVE only once it plays, so one probe may be all there is: wait for the
	// count to see it before waiting for it to go, or the viewers could overlap it.
	waitViewers(t, ctx, c, ch.Arn, func(v int64) bool { return v == 1 })
	waitViewers(t, ctx, c, ch.Arn, func(v int64) bool { return v == 0 })
	const viewerCount = 3
	vctx, stopViewers := context.WithCancel(ctx)
	defer stopViewers()
	viewersDone := make(chan bench.ViewersReport, 1)
	go func() {
		rep, _ := bench.Viewers(vctx, bench.ViewersConfig{URL: *ch.PlaybackUrl, Viewers: viewerCount, Duration: 3 * time.Minute})
		viewersDone <- rep
	}()
	waitViewers(t, ctx, c, ch.Arn, func(v int64) bool { return v == viewerCount })
	steadyFrom := time.Now()
	// Let the recorder keep a few whole seconds of the steady count, and the bit rate settle.
	time.Sleep(time.Until(liveAt.Add(25 * time.Second)))
	time.Sleep(6 * time.Second)
	if out, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: ch.Arn}); err != nil || out.Stream.ViewerCount != viewerCount {
		select {
		case rep := <-viewersDone:
			t.Logf("viewers ended early: %s", rep)
		default:
		}
		t.Fatalf("viewers: %v %v", out, err)
	}

	start := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	end := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	seedQuery := fmt.Sprintf(`[{"Id":"views","MetricStat":{"Metric":{"Namespace":"AWS/IVS","MetricName":"ConcurrentViews","Dimensions":[{"Name":"Channel","Value":"%s"}]},"Period":60,"Stat":"Maximum"}}]`, id)
	seedArgs := []string{"cloudwatch", "get-metric-data", "--metric-data-queries", seedQuery,
		"--start-time", start.Format(time.RFC3339), "--end-time", end.Format(time.RFC3339), "--endpoint-url", n.endpoint()}

	t.Run("aws-cli v2 (Debian, awsQuery)", func(t *testing.T) {
		cli := awsCLI(t, "aws-cli/2.")
		vals := cliValues(t, cli, seedArgs)
		if len(vals) == 0 || vals[0] != viewerCount {
			t.Fatalf("ConcurrentViews Maximum (newest first) = %v, want %d first", vals, viewerCount)
		}
	})
	t.Run("aws-cli v1 (pip, JSON 1.0)", func(t *testing.T) {
		cli := awsCLI(t, "aws-cli/1.")
		vals := cliValues(t, cli, seedArgs)
		if len(vals) == 0 || vals[0] != viewerCount {
			t.Fatalf("ConcurrentViews Maximum (newest first) = %v, want %d first", vals, viewerCount)
		}
	})

	cw := cloudwatch.New(cloudwatch.Options{Region: testRegion, BaseEndpoint: aws.String(n.endpoint()), RetryMaxAttempts: 1, HTTPClient: sdkHTTP,
		Credentials: staticCreds(testAccessKey, testSecret)})
	t.Run("aws-sdk-go-v2 (RPC v2 CBOR)", func(t *testing.T) {
		_, vals := metricValues(t, ctx, n, "ConcurrentViews", 60, "Maximum", start, end, "Channel", id)
		if len(vals) == 0 || vals[len(vals)-1] != viewerCount {
			t.Fatalf("ConcurrentViews Maximum = %v", vals)
		}
		// Every whole 5 s period since the count settled averages exactly the viewers.
		from := steadyFrom.Add(5 * time.Second).Truncate(5 * time.Second)
		ts, avg := metricValues(t, ctx, n, "ConcurrentViews", 5, "Average", from, time.Now().Add(-3*time.Second).Truncate(5*time.Second), "Channel", *ch.Arn)
		if len(avg) == 0 {
			t.Fatal("no 5 s ConcurrentViews datapoints")
		}
		for i, v := range avg {
			if v != viewerCount {
				t.Errorf("ConcurrentViews 5 s Average at %v = %v, want %d", ts[i], v, viewerCount)
			}
		}
		// IngestVideoBitrate over the stream's last 20 s against ffmpeg's constant bit rate.
		_, br := metricValues(t, ctx, n, "IngestVideoBitrate", 10, "Average", time.Now().Add(-22*time.Second).Truncate(10*time.Second),
			time.Now().Add(-2*time.Second).Truncate(10*time.Second), "Channel", id, "Track", "Track0")
		if len(br) == 0 {
			t.Fatal("no IngestVideoBitrate datapoints")
		}
		var sum float64
		for _, v := range br {
			sum += v
		}
		mean := sum / float64(len(br))
		t.Logf("IngestVideoBitrate %v (mean %.0f b/s) for ffmpeg -b:v %d", br, mean, videoBitrate)
		if mean < 0.9*videoBitrate || mean > 1.1*videoBitrate {
			t.Errorf("IngestVideoBitrate mean %.0f is not within 10%% of %d", mean, videoBitrate)
		}
		_, fps := metricValues(t, ctx, n, "IngestFramerate", 10, "Average", time.Now().Add(-22*time.Second).Truncate(10*time.Second), time.Now(), "Channel", id)
		if len(fps) == 0 || fps[0] < 27 || fps[0] > 33 {
			t.Errorf("IngestFramerate %v, want about 30", fps)
		}
		_, kfi := metricValues(t, ctx, n, "KeyframeInterval", 10, "Maximum", time.Now().Add(-20*time.Second), time.Now(), "Channel", id)
		if len(kfi) == 0 || kfi[len(kfi)-1] < 1.9 || kfi[len(kfi)-1] > 2.1 {
			t.Errorf("KeyframeInterval %v, want 2 s (-g 60 at 30 fps)", kfi)
		}
		_, streams := metricValues(t, ctx, n, "ConcurrentStreams", 60, "Maximum", start, end, "Health", "HEALTHY")
		if len(streams) == 0 || streams[len(streams)-1] != 1 {
			t.Errorf("ConcurrentStreams{Health=HEALTHY} %v", streams)
		}
		lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/IVS"),
			Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("Channel"), Value: aws.String(id)}}})
		if err != nil || len(lm.Metrics) < 8 {
			t.Fatalf("ListMetrics for the channel: %d metrics, %v", len(lm.Metrics), err)
		}
	})

	t.Run("/metrics parses", func(t *testing.T) {
		fams := scrape(t, n)
		if v := gaugeValue(fams, "glasscast_concurrent_views", "channel", id); v != viewerCount {
			t.Errorf("glasscast_concurrent_views = %v", v)
		}
		if v := gaugeValue(fams, "glasscast_ingest_video_bitrate_bps", "channel", id); v < 0.5*videoBitrate {
			t.Errorf("glasscast_ingest_video_bitrate_bps = %v", v)
		}
		for _, name := range []string{"glasscast_edge_cache_hits_total", "glasscast_edge_coalesced_total", "glasscast_origin_requests_total",
			"glasscast_origin_blocked_requests", "glasscast_chat_connections", "glasscast_archive_spool_bytes", "glasscast_concurrent_streams",
			"glasscast_live_input_seconds_total", "glasscast_keyframe_interval_seconds", "glasscast_webhook_delivery_delay_seconds"} {
			if fams[name] == nil {
				t.Errorf("/metrics lacks %s", name)
			}
		}
		// Every series the Grafana dashboard plots exists (recorded time only with a recording).
		dash, err := os.ReadFile("../configs/grafana-dashboard.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`glasscast_[a-z_]+`).FindAllString(string(dash), -1) {
			name = strings.TrimSuffix(name, "_bucket")
			if fams[name] == nil && name != "glasscast_recorded_seconds_total" {
				t.Errorf("the dashboard plots %s, which /metrics lacks", name)
			}
		}
	})

	stopViewers()
	<-viewersDone
	pub.stop()
	rcv.waitNames(id, []string{"Session Created", "Stream Start", "Stream End", "Session Ended"}, 30*time.Second)
	if h := scrape(t, n)["glasscast_webhook_delivery_delay_seconds"]; h != nil && len(h.Metric) > 0 {
		hg := h.Metric[0].GetHistogram()
		t.Logf("webhook delivery delay (publication to acknowledged 2xx), %d events: mean %.1f ms; %s", hg.GetSampleCount(),
			1000*hg.GetSampleSum()/float64(hg.GetSampleCount()), hg.String())
	}

	// The receiver goes down; a second broadcast comes and goes; the server restarts; the
	// receiver comes back and gets the second broadcast's events once each, in order.
	rcv.stop()
	pub2 := publish(t, n.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	time.Sleep(2 * time.Second)
	pub2.stop()
	waitOffline(t, ctx, c, ch.Arn, 30*time.Second)
	time.Sleep(2 * time.Second) // a few failed attempts
	restartAt := time.Now()
	n.restart(false)
	upAt := time.Now()
	rcv2 := startHookReceiver(t, hookAddr)
	both := []string{"Session Created", "Stream Start", "Stream End", "Session Ended"}
	rcv2.waitNames(id, both, 60*time.Second)
	t.Logf("restart took %v; the queued events arrived %v after the server was back", upAt.Sub(restartAt).Round(time.Millisecond),
		time.Since(upAt).Round(time.Millisecond))

	// Nothing more comes: no event is sent twice, even after a crash (kill -9) once deliveries
	// are acknowledged, and longer than the server's redelivery wait.
	time.Sleep(3 * time.Second)
	n.restart(true)
	time.Sleep(10 * time.Second)
	if got := rcv2.names(id); !slices.Equal(got, both) {
		t.Fatalf("after the restarts the receiver got %q", got)
	}
	seen := map[string]bool{}
	for _, r := range []*hookReceiver{rcv, rcv2} {
		r.mu.Lock()
		for _, ev := range r.events {
			if seen[ev.ID] {
				t.Errorf("event %s delivered twice", ev.ID)
			}
			seen[ev.ID] = true
			if ev.DetailType != events.StreamStateChange {
				t.Errorf("a %s event passed the stream-state filter", ev.DetailType)
			}
		}
		if len(r.bad) > 0 {
			t.Errorf("rejected webhook requests: %v", r.bad)
		}
		r.mu.Unlock()
	}
}

// awsCLI finds an AWS CLI whose version starts with prefix: Debian's v2 at /usr/bin/aws, pip's
// v1 wherever `aws` is on the PATH (pyenv shims included).
func awsCLI(t *testing.T, prefix string) string {
	t.Helper()
	var cands []string
	if p, err := exec.LookPath("aws"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/aws", "/usr/local/bin/aws", filepath.Join(os.Getenv("HOME"), ".local/bin/aws"))
	for _, c := range cands {
		out, err := exec.Command(c, "--version").CombinedOutput()
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), prefix) {
			return c
		}
	}
	if prefix == "aws-cli/2." {
		t.Fatal("Debian's AWS CLI v2 is not installed (apt-get install awscli; .ci/deps does)")
	}
	// pip's registry is out of reach on some machines, so the v1 client cannot always be had.
	t.Skipf("no %s client installed (pip install awscli)", prefix)
	return ""
}

// cliValues runs an AWS CLI with the test credentials and returns the first result's Values.
func cliValues(t *testing.T, cli string, args []string) []float64 {
	t.Helper()
	cmd := exec.Command(cli, append(args, "--output", "json")...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+testAccessKey, "AWS_SECRET_ACCESS_KEY="+testSecret,
		"AWS_DEFAULT_REGION="+testRegion, "AWS_REGION="+testRegion, "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s%s", cli, strings.Join(args, " "), err, out, stderr)
	}
	var res struct {
		MetricDataResults []struct {
			Id         string
			Timestamps []any
			Values     []float64
			StatusCode string
		}
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.MetricDataResults) != 1 {
		t.Fatalf("%s printed %s (%v)", cli, out, err)
	}
	r := res.MetricDataResults[0]
	if r.Id != "views" || r.StatusCode != "Complete" || len(r.Timestamps) != len(r.Values) {
		t.Fatalf("%s printed %s", cli, out)
	}
	t.Logf("%s: %s", cli, strings.Join(strings.Fields(string(out)), " "))
	return r.Values
}

// metricsToken is the bearer token of nodes whose /metrics a test scrapes.
const metricsToken = "test-metrics-token"

// scrape reads /metrics with Prometheus' own text parser.
func scrape(t *testing.T, n *node) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", n.endpoint()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func gaugeValue(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// metricValues asks the node's CloudWatch API, through the real aws-sdk-go-v2 client, for
// statistic stat of the AWS/IVS metric over [from, to) in periods of period seconds, dims
// being name, value pairs; the datapoints come oldest first.
func metricValues(t *testing.T, ctx context.Context, n *node, metric string, period int32, stat string, from, to time.Time, dims ...string) ([]time.Time, []float64) {
	t.Helper()
	cw := cloudwatch.New(cloudwatch.Options{Region: testRegion, BaseEndpoint: aws.String(n.endpoint()), RetryMaxAttempts: 1, HTTPClient: sdkHTTP,
		Credentials: staticCreds(testAccessKey, testSecret)})
	q := cwtypes.MetricDataQuery{Id: aws.String("q"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(period), Stat: aws.String(stat),
		Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String(metric)}}}
	for i := 0; i+1 < len(dims); i += 2 {
		q.MetricStat.Metric.Dimensions = append(q.MetricStat.Metric.Dimensions, cwtypes.Dimension{Name: aws.String(dims[i]), Value: aws.String(dims[i+1])})
	}
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to),
		MetricDataQueries: []cwtypes.MetricDataQuery{q}, ScanBy: cwtypes.ScanByTimestampAscending})
	if err != nil {
		t.Fatalf("GetMetricData %s: %v", metric, err)
	}
	return out.MetricDataResults[0].Timestamps, out.MetricDataResults[0].Values
}
