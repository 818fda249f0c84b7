package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestWHIPLadderRecorded: what an RTMP-fed channel gets, a WHIP-fed one gets too. Chromium's
// fake camera goes live over WHIP (the Go live page) on a STANDARD channel that records to S3
// (versitygw): the multivariant playlist lists a transcoded ladder, two PutMetadata cues reach
// the live stream (emsg) and the recording (ID3), and the recording holds every rendition in
// IVS's layout and plays end to end.
func TestWHIPLadderRecorded(t *testing.T) {
	needBrowser(t)
	r := newRecordedChannel(t, "whip-recorded", types.ChannelTypeStandardChannelType, 60, 0)
	s3, n, c, ctx, ch, chID := r.s3, r.n, r.c, r.ctx, r.ch, r.chID
	started := time.Now()

	var wg sync.WaitGroup
	var live whipAttempt
	var rs []rendition
	var played float64
	nodeScript(t, func(m map[string]json.RawMessage) {
		switch {
		case m["live"] != nil:
			_ = json.Unmarshal(m["live"], &live)
			if live.State != "live" {
				return
			}
			waitLive(t, ctx, c, ch.Arn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, text := range []string{"whip cue 1", "whip cue 2"} {
					time.Sleep(3 * time.Second)
					if _, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(text)}); err != nil {
						t.Errorf("PutMetadata %d: %v", i, err)
					}
				}
			}()
		case m["sample"] != nil:
			var s whipSample
			_ = json.Unmarshal(m["sample"], &s)
			played = max(played, s.CurrentTime)
			if len(rs) < 2 {
				rs = ladder(t, *ch.PlaybackUrl)
			}
		}
	}, "whip.mjs", n.endpoint()+"/player/go-live", r.key, "sk_us-west-2_wrongwrongwrong", n.endpoint()+"/player/"+chID, *ch.PlaybackUrl, "12")
	wg.Wait()
	if live.State != "live" {
		t.Fatalf("go live: %+v", live)
	}
	if played < 4 {
		t.Fatalf("hls.js played %.1f s of the WHIP-fed ladder", played)
	}
	var names []string
	for _, x := range rs {
		names = append(names, x.name+" "+x.resolution)
	}
	// Not source first: a WHIP camera's few hundred kb/s can rank the source below a rendition.
	if len(rs) < 2 || !slices.ContainsFunc(rs, func(x rendition) bool { return x.name == "source" }) {
		t.Fatalf("the multivariant playlist of a WHIP-fed STANDARD channel lists %v", names)
	}
	t.Logf("WHIP-fed ladder: %v", names)
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	if strings.Contains(n.Logs(), "flush last part") {
		t.Fatalf("the last part was not flushed through the ladder after the page stopped:\n%s", n.Logs())
	}

	texts := endedCueTexts(t, *ch.PlaybackUrl)
	if !texts["whip cue 1"] || !texts["whip cue 2"] {
		t.Fatalf("cues in the live stream: %v", texts)
	}

	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 1, time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	prefix := prefixes[0]
	end := readEvent(t, s3, seedBucket, prefix+"events/recording-ended.json")
	var recorded []string
	for _, x := range end.Media.HLS.Renditions {
		recorded = append(recorded, x.Path)
	}
	// A browser lowers its camera's resolution when its CPU is short, and the recording then
	// names the source by its new height too: the ladder recorded is at least the live one.
	if len(recorded) < len(rs) {
		t.Fatalf("recorded renditions %v, live ladder %v", recorded, names)
	}
	checkLayout(t, keys, prefix, recorded, "ended")
	probeCamera(t, s3.publicURL(t, seedBucket)+"/"+prefix+"media/hls/master.m3u8", durationOf(end))
	var cues []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix+"media/hls/"+recorded[0]+"/") && strings.HasSuffix(k, ".ts") {
			b, _ := s3.get(t, seedBucket, k)
			cues = append(cues, id3Cues(t, b)...)
		}
	}
	sort.Strings(cues)
	if !slices.Equal(cues, []string{"whip cue 1", "whip cue 2"}) {
		t.Fatalf("cues in the recording's %s: %q", recorded[0], cues)
	}
	t.Logf("recorded %v in %v; whole test %v", durationOf(end), recorded, time.Since(started).Round(time.Second))
}

// probeCamera is probePlaylist for a browser's camera, whose frame rate varies (a loaded
// browser skips frames): H.264 and AAC for want seconds (±1.5 s), no video gap of a second.
func probeCamera(t *testing.T, url string, want time.Duration) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-show_streams",
		"-show_entries", "packet=codec_type,pts_time,dts_time", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p probeResult
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range p.Streams {
		kinds = append(kinds, s.CodecType+"/"+s.CodecName)
	}
	if !slices.Contains(kinds, "video/h264") || !slices.Contains(kinds, "audio/aac") {
		t.Fatalf("ffprobe %s: streams %v", url, kinds)
	}
	var ts []float64
	for _, pk := range p.Packets {
		if f, err := strconv.ParseFloat(pk.DTSTime, 64); err == nil && pk.CodecType == "video" {
			ts = append(ts, f)
		}
	}
	if len(ts) < 2 {
		t.Fatalf("ffprobe %s: %d video packets", url, len(ts))
	}
	slices.Sort(ts)
	for i := 1; i < len(ts); i++ {
		if gap := ts[i] - ts[i-1]; gap > 1 {
			t.Fatalf("ffprobe %s: a video gap of %.3f s at %.3f s", url, gap, ts[i-1])
		}
	}
	if span := time.Duration((ts[len(ts)-1] - ts[0]) * float64(time.Second)); span-want > 1500*time.Millisecond || want-span > 1500*time.Millisecond {
		t.Fatalf("ffprobe %s: video spans %v, want %v", url, span, want)
	}
}

// goLiveOverWHIP has headless Chromium publish its fake camera and microphone over WHIP, with
// H.264 (which passes through), and waits for the answer.
func goLiveOverWHIP(t *testing.T, n *node, key string) *whipBrowser {
	t.Helper()
	b := startWHIPBrowser(t, n, key, "video/H264", "640x360")
	var live whipAttempt
	_ = json.Unmarshal(b.next("live"), &live)
	if live.Status != http.StatusCreated {
		t.Fatalf("WHIP offer: %+v\n%s", live, n.Logs())
	}
	return b
}

// TestWHIPConformance runs the LL-HLS checklist on a channel fed by Chromium over WHIP. D8
// stalls the browser's senders while its peer connection stays up. The browser's camera runs
// at whatever rate the loaded cores allow (20 fps, drifting to 19), so a part may be short
// where whole frames leave no cut between 85 % and 100 % of PART-TARGET; P2 checks each such
// part against the frame after it.
func TestWHIPConformance(t *testing.T) {
	needBrowser(t)
	runConformanceVia(t, types.ChannelTypeBasicChannelType, func(n *node, key string) stallable {
		return goLiveOverWHIP(t, n, key)
	}, 500*time.Millisecond, true, "D10", "P15")
}

// TestWHIPInIVSPlayer: Amazon's IVS player plays a channel that Chromium publishes over WHIP
// in low-latency mode, fires a TEXT_METADATA_CUE for each PutMetadata call and ends with
// ENDED when the browser DELETEs its session; CloudWatch has the WHIP input's frame rate and
// key frame interval as it has an RTMP input's.
func TestWHIPInIVSPlayer(t *testing.T) {
	needBrowser(t)
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	started := time.Now()
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("whip-ivs"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	b := goLiveOverWHIP(t, n, key)
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)

	playCuesInIVSPlayer(t, ctx, c, ch, []string{`{"whip":1}`, `{"whip":2}`, `{"whip":3}`}, b.stop, "WHIP-fed channel")
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)

	// The browser's frame rate varies with the machine's load, so the bounds are wide; a key
	// frame is asked for every segment target (2 s), and Chromium sends one soon after.
	chID := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	stat := func(metric string) []float64 {
		_, v := metricValues(t, ctx, n, metric, 5, "Maximum", started.Truncate(5*time.Second), time.Now().Add(5*time.Second), "Channel", chID)
		return v
	}
	fps, kfi := stat("IngestFramerate"), stat("KeyframeInterval")
	t.Logf("IngestFramerate %v, KeyframeInterval %v (5 s maxima); the browser changed its resolution %d times",
		fps, kfi, strings.Count(n.Logs(), "video parameters changed"))
	if len(fps) == 0 || slices.Max(fps) < 5 || slices.Max(fps) > 31 {
		t.Fatalf("IngestFramerate of the WHIP input %v, want 5–30 fps", fps)
	}
	if len(kfi) == 0 || slices.Max(kfi) <= 0 || slices.Max(kfi) > 3 {
		t.Fatalf("KeyframeInterval of the WHIP input %v, want a key frame at least every segment target (2 s)", kfi)
	}
	t.Logf("whole test %v", time.Since(started).Round(time.Second))
}
