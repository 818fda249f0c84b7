package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/pion/webrtc/v4"
)

type whipSample struct {
	CurrentTime     float64  `json:"currentTime"`
	Paused          bool     `json:"paused"`
	Latency         *float64 `json:"latency"`
	BehindWallClock *float64 `json:"behindWallClock"`
	Codecs          *string  `json:"codecs"`
	VideoWidth      int      `json:"videoWidth"`
	AudioDecoded    int64    `json:"audioDecoded"`
	VideoDecoded    int64    `json:"videoDecoded"`
	Publisher       struct {
		Codec     *string `json:"codec"`
		BytesSent int64   `json:"bytesSent"`
	} `json:"publisher"`
}

type whipAttempt struct {
	State    string `json:"state"`
	Status   int    `json:"status"`
	Error    string `json:"error"`
	Location string `json:"location"`
	MS       int64  `json:"ms"`
}

// TestWHIPGoLiveInBrowser: headless Chromium's fake camera and microphone go live from the Go
// live page over WHIP (H.264 passed through, Opus transcoded to AAC); a wrong key is refused
// with 403 and nothing goes live; hls.js plays the channel in a second page with audio and
// video (avc1 and mp4a in the playlist); an RTMP publisher on the same key is refused while
// WHIP is live and a WHIP offer gets 409 while RTMP is; the stream session records the ingest
// and the page's stop (DELETE) ends the stream: GetStream answers ChannelNotBroadcasting and
// the session has Stream End; IngestVideoBitrate measured the WHIP input.
func TestWHIPGoLiveInBrowser(t *testing.T) {
	needBrowser(t)
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("whip"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	chID := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]

	start := time.Now()
	var refused, live whipAttempt
	var samples []whipSample
	stopped := false
	nodeScript(t, func(m map[string]json.RawMessage) {
		switch {
		case m["refused"] != nil:
			_ = json.Unmarshal(m["refused"], &refused)
			// Nothing went live on the wrong key.
			if _, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: ch.Arn}); errorCode(err) != "ChannelNotBroadcasting" {
				t.Errorf("after the wrong key GetStream says %v, want ChannelNotBroadcasting", err)
			}
		case m["live"] != nil:
			_ = json.Unmarshal(m["live"], &live)
			if live.State == "live" {
				waitLive(t, ctx, c, ch.Arn)
				// One publisher per channel whatever the protocol: RTMP on the same key is refused.
				publish(t, n.rtmpURL(key), pubOptions{Duration: 10 * time.Second}).refused(t)
			}
		case m["sample"] != nil:
			var s whipSample
			_ = json.Unmarshal(m["sample"], &s)
			samples = append(samples, s)
		case m["stopped"] != nil:
			stopped = true
		}
	}, "whip.mjs", n.endpoint()+"/player/go-live", key, "sk_us-west-2_wrongwrongwrong", n.endpoint()+"/player/"+chID, *ch.PlaybackUrl, "12")

	if refused.Status != http.StatusForbidden || refused.State != "failed" {
		t.Fatalf("wrong key: %+v, want a failed attempt with 403", refused)
	}
	if live.State != "live" || !strings.Contains(live.Location, "/whip/session/") {
		t.Fatalf("go live: %+v\n%s", live, n.Logs())
	}
	t.Logf("live %d ms after the click", live.MS)
	if len(samples) < 10 || !stopped {
		t.Fatalf("%d samples, stopped %v", len(samples), stopped)
	}
	last := samples[len(samples)-1]
	first := slices.IndexFunc(samples, func(s whipSample) bool { return s.CurrentTime > 0 && !s.Paused })
	if first < 0 {
		t.Fatalf("hls.js never played: %+v\n%s", last, n.Logs())
	}
	if adv := last.CurrentTime - samples[first].CurrentTime; adv < 4 {
		t.Fatalf("playback advanced %.1f s in %d samples: %+v", adv, len(samples)-first, last)
	}
	if last.Codecs == nil || !strings.Contains(*last.Codecs, "avc1") || !strings.Contains(*last.Codecs, "mp4a") {
		t.Fatalf("codecs %v, want avc1 and mp4a", last.Codecs)
	}
	if last.VideoWidth == 0 || last.AudioDecoded == 0 || last.VideoDecoded == 0 {
		t.Fatalf("nothing decoded: %+v", last)
	}
	if last.Publisher.Codec == nil || !strings.EqualFold(*last.Publisher.Codec, "video/H264") {
		t.Errorf("the page sent %v, want H.264", last.Publisher.Codec)
	}
	if last.BehindWallClock != nil {
		t.Logf("hls.js plays %.2f s behind the wall clock (latency %v), codecs %s", *last.BehindWallClock, deref(last.Latency), *last.Codecs)
	}

	// The page's stop DELETEs the session: the stream ends after the reconnect grace.
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	sessions, err := c.ListStreamSessions(ctx, &ivs.ListStreamSessionsInput{ChannelArn: ch.Arn})
	if err != nil || len(sessions.StreamSessions) != 1 {
		t.Fatalf("sessions: %v %v", sessions, err)
	}
	ss, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn, StreamId: sessions.StreamSessions[0].StreamId})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ss.StreamSession.TruncatedEvents {
		names = append(names, aws.ToString(e.Name))
	}
	if !slices.Contains(names, "Stream End") || ss.StreamSession.EndTime == nil {
		t.Fatalf("session events %v, end %v", names, ss.StreamSession.EndTime)
	}
	if ic := ss.StreamSession.IngestConfiguration; ic == nil || ic.Video == nil || !strings.HasPrefix(aws.ToString(ic.Video.Codec), "avc1") || ic.Audio == nil || !strings.HasPrefix(aws.ToString(ic.Audio.Codec), "mp4a") {
		t.Errorf("ingest configuration %+v", ic)
	}

	// The shared session measured the WHIP input: IngestVideoBitrate has datapoints.
	cw := cloudwatch.New(cloudwatch.Options{Region: testRegion, BaseEndpoint: aws.String(n.endpoint()), RetryMaxAttempts: 1,
		Credentials: staticCreds(testAccessKey, testSecret)})
	mout, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(start.Add(-time.Minute).Truncate(10 * time.Second)), EndTime: aws.Time(time.Now().Add(10 * time.Second)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("q"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(10), Stat: aws.String("Maximum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/IVS"), MetricName: aws.String("IngestVideoBitrate"),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Channel"), Value: aws.String(chID)}, {Name: aws.String("Track"), Value: aws.String("Track0")}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if v := mout.MetricDataResults[0].Values; len(v) == 0 || slices.Max(v) < 50_000 {
		t.Errorf("IngestVideoBitrate %v, want datapoints above 50 kb/s", v)
	} else {
		t.Logf("IngestVideoBitrate (10 s maxima) %v", v)
	}

	// And the other way round: with an RTMP publisher live, a WHIP offer on the key gets 409.
	rt := publish(t, n.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint()+"/whip", strings.NewReader(offer.SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("WHIP offer while RTMP is live: %d, want 409", resp.StatusCode)
	}
	rt.stop()
	t.Logf("whole test %v", time.Since(start).Round(time.Second))
}

func deref(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}
