package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// The archive's recording events reach the events stream in EventBridge's shape, and its
// recorded time reaches RecordedTime.
func TestMonitoringRecording(t *testing.T) {
	natsAddr := freePort(t)
	n := startServe(t, "", "--ingest-reconnect-grace", "1s", "--nats-listen", natsAddr)
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	rc := recordingConfig(t, ctx, c, "local-recordings", 60, 0)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("recorded"), Type: types.ChannelTypeBasicChannelType,
		InsecureIngest: true, RecordingConfigurationArn: rc.Arn})
	id := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	pub := publish(t, n.rtmpURL(key), pubOptions{Size: "320x180", Duration: 8 * time.Second})
	waitLive(t, ctx, c, ch.Arn)
	<-pub.exited

	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(tctx, binary, append([]string{"events", "tail", "--nats-url", "nats://" + natsAddr, "--since", "10m",
		"--types", "recording-state", "--channels", id, "--count", "2"}, natsLogin(t, n)...)...).Output()
	if err != nil {
		t.Fatalf("events tail: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("events tail printed:\n%s", out)
	}
	type detail struct {
		Status    string    `json:"recording_status"`
		Reason    *string   `json:"recording_status_reason"`
		Bucket    string    `json:"recording_s3_bucket_name"`
		Prefix    string    `json:"recording_s3_key_prefix"`
		Duration  int64     `json:"recording_duration_ms"`
		SessionID string    `json:"recording_session_id"`
		StreamID  string    `json:"stream_id"`
		Streams   *[]string `json:"recording_session_stream_ids"`
		EventName *string   `json:"event_name"`
	}
	var evs [2]struct {
		DetailType string   `json:"detail-type"`
		Source     string   `json:"source"`
		Resources  []string `json:"resources"`
		Detail     detail   `json:"detail"`
	}
	for i := range evs {
		if err := json.Unmarshal([]byte(lines[i]), &evs[i]); err != nil {
			t.Fatalf("%v: %s", err, lines[i])
		}
		e := evs[i]
		if e.DetailType != "IVS Recording State Change" || e.Source != "aws.ivs" || len(e.Resources) != 1 || e.Resources[0] != *ch.Arn ||
			e.Detail.EventName != nil || e.Detail.Reason == nil || *e.Detail.Reason != "" || e.Detail.Bucket != "local-recordings" ||
			!strings.HasPrefix(e.Detail.Prefix, "ivs/v1/"+testAccount+"/"+id+"/") || strings.HasSuffix(e.Detail.Prefix, "/") ||
			e.Detail.SessionID == "" || !strings.HasPrefix(e.Detail.StreamID, "st-") {
			t.Errorf("event %d: %s", i, lines[i])
		}
	}
	start, end := evs[0].Detail, evs[1].Detail
	if start.Status != "Recording Start" || start.Duration != 0 || start.Streams != nil {
		t.Errorf("first event: %s", lines[0])
	}
	if end.Status != "Recording End" || end.Duration < 5000 || end.Streams == nil || len(*end.Streams) != 1 || end.Prefix != start.Prefix {
		t.Errorf("second event: %s", lines[1])
	}

	// RecordedTime adds up to the recording's duration.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, vals := metricValues(t, ctx, n, "RecordedTime", 600, "Sum", time.Now().Add(-10*time.Minute), time.Now().Add(time.Minute), "Channel", id)
		var sum float64
		for _, v := range vals {
			sum += v
		}
		want := float64(end.Duration) / 1000
		if math.Abs(sum-want) <= 0.05*want {
			t.Logf("RecordedTime %.3f s for a recording of %.3f s", sum, want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RecordedTime sums to %.3f s, the recording lasts %.3f s", sum, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
