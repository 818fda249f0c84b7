package e2e

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// srtCBR is x264's constant bit rate (HRD with filler), so that IngestVideoBitrate has a
// right answer; 360p, so that ffmpeg keeps its frame rate on loaded cores.
var srtCBR = pubOptions{Size: "640x360", Extra: []string{"-b:v", "1000k", "-minrate", "1000k", "-maxrate", "1000k", "-bufsize", "1000k", "-x264-params", "nal-hrd=cbr"}}

// TestSRTRecordedReconnect: what an RTMP-fed channel gets, an SRT-fed one gets too. A
// publisher over SRT on a channel that records to S3 (versitygw) crashes and comes back
// within the reconnect grace: the stream session continues (one session, the same stream ID, a
// discontinuity in the live playlist and none of ENDLIST), the recording is one recording
// that ffprobe plays end to end and that holds both PutMetadata cues as ID3, the live stream
// carried them as emsg, the session lists its events, and CloudWatch's IngestVideoBitrate,
// IngestFramerate and KeyframeInterval measured the SRT input.
func TestSRTRecordedReconnect(t *testing.T) {
	r := newRecordedChannel(t, "srt-recorded", types.ChannelTypeBasicChannelType, 5, 0, "--ingest-reconnect-grace", "4s")
	s3, n, c, ctx, ch, key, chID := r.s3, r.n, r.c, r.ctx, r.ch, r.key, r.chID
	started := time.Now()
	u := srtURL(n.SRT, "#!::r="+key+",m=publish", "")

	put := func(text string) {
		t.Helper()
		if _, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(text)}); err != nil {
			t.Fatal(err)
		}
	}
	pub := publishSRT(t, u, srtCBR)
	first := waitLive(t, ctx, c, ch.Arn)
	time.Sleep(3 * time.Second)
	put("srt cue 1")
	time.Sleep(2 * time.Second)
	// The publisher crashes. Over UDP nothing tells the ingest (the peer idle timeout would, in
	// 10 s); the connection that comes back finds the old one silent and takes its place.
	_ = pub.cmd.Process.Kill()
	<-pub.exited
	time.Sleep(2 * time.Second)
	second := srtCBR
	second.Duration = 14 * time.Second
	pub = publishSRT(t, u, second)
	time.Sleep(5 * time.Second)
	again := waitLive(t, ctx, c, ch.Arn)
	if *again.StreamId != *first.StreamId {
		t.Fatalf("an SRT reconnect within the grace started a new session %s (was %s)", *again.StreamId, *first.StreamId)
	}
	code, body := get(t, mediaPlaylistURL(*ch.PlaybackUrl))
	if code != 200 || !strings.Contains(body, "#EXT-X-DISCONTINUITY") || strings.Contains(body, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist after the SRT reconnect: %d\n%s", code, body)
	}
	put("srt cue 2")
	<-pub.exited
	if pub.err != nil {
		t.Fatalf("ffmpeg: %v\n%s", pub.err, pub.output())
	}
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)

	// The live stream carried both cues as emsg.
	texts := endedCueTexts(t, *ch.PlaybackUrl)
	if !texts["srt cue 1"] || !texts["srt cue 2"] {
		t.Fatalf("cues in the live stream: %v", texts)
	}

	// One session, with its events.
	lss, err := c.ListStreamSessions(ctx, &ivs.ListStreamSessionsInput{ChannelArn: ch.Arn})
	if err != nil || len(lss.StreamSessions) != 1 {
		t.Fatalf("one session expected after an SRT reconnect: %v %+v", err, lss)
	}
	sess, took := waitSessionEvents(t, ctx, c, ch.Arn, first.StreamId, 30*time.Second,
		"Session Created", "Stream Start", "Recording Start", "Stream End", "Recording End", "Session Ended")
	t.Logf("the session listed every event %v after the cues were read", took.Round(time.Millisecond))
	if v := sess.IngestConfiguration.Video; v == nil || v.VideoWidth != 640 || v.TargetFramerate != 30 {
		t.Fatalf("ingest configuration %+v", v)
	}

	// One recording, with a discontinuity at the reconnect, both cues as ID3, and playable.
	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 1, time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	prefix := prefixes[0]
	checkLayout(t, keys, prefix, []string{"360p30"}, "ended")
	end := readEvent(t, s3, seedBucket, prefix+"events/recording-ended.json")
	if d := durationOf(end); d < 17*time.Second || d > 24*time.Second {
		t.Fatalf("the recording lasts %v, want the two streams of about 8 and 14 s", d)
	}
	pl, _ := s3.get(t, seedBucket, prefix+"media/hls/360p30/playlist.m3u8")
	if strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Fatalf("the recording should mark the reconnect once:\n%s", pl)
	}
	probePlaylist(t, s3.publicURL(t, seedBucket)+"/"+prefix+"media/hls/master.m3u8", durationOf(end))
	var cues []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, ".ts") {
			b, _ := s3.get(t, seedBucket, k)
			cues = append(cues, id3Cues(t, b)...)
		}
	}
	sort.Strings(cues)
	if !slices.Equal(cues, []string{"srt cue 1", "srt cue 2"}) {
		t.Fatalf("cues in the recording: %q", cues)
	}

	// CloudWatch measured the SRT input.
	stat := func(metric, statName string, dims ...string) []float64 {
		_, v := metricValues(t, ctx, n, metric, 5, statName, started.Truncate(5*time.Second), time.Now().Add(5*time.Second), dims...)
		return v
	}
	// Windows that hold the start, the crash, the gap before the reconnect or the grace after
	// the end average in seconds of no input (up to four of them), so only the steady ones are judged:
	// the 14 s second stream covers at least two whole 5 s windows, and no window may read
	// above the input.
	steady := func(name string, v []float64, want float64) {
		t.Helper()
		slices.Sort(v)
		if len(v) < 2 || v[len(v)-2] < 0.75*want || v[len(v)-1] > 1.25*want {
			t.Fatalf("%s 5 s averages %v: want the two steadiest within 25%% of %g", name, v, want)
		}
	}
	br := stat("IngestVideoBitrate", "Average", "Channel", chID, "Track", "Track0")
	t.Logf("IngestVideoBitrate 5 s averages over SRT: %v for ffmpeg -b:v 1000k", br)
	steady("IngestVideoBitrate", br, 1_000_000)
	steady("IngestFramerate", stat("IngestFramerate", "Average", "Channel", chID), 30)
	if kfi := stat("KeyframeInterval", "Maximum", "Channel", chID); len(kfi) == 0 || slices.Max(kfi) < 1.9 || slices.Max(kfi) > 2.1 {
		t.Fatalf("KeyframeInterval %v, want 2 s", kfi)
	}
	t.Logf("whole test %v", time.Since(started).Round(time.Second))
}

// TestSRTLadderInIVSPlayer: an encrypted SRT publisher on a STANDARD channel gets IVS's
// transcoded ladder (aligned renditions that decode), and the IVS player plays it in low
// latency mode, fires a TEXT_METADATA_CUE for each PutMetadata call and ends with ENDED when
// the SRT publisher hangs up.
func TestSRTLadderInIVSPlayer(t *testing.T) {
	needBrowser(t)
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	started := time.Now()
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("srt-ladder"), Type: types.ChannelTypeStandardChannelType})
	pub := publishSRT(t, srtURL(n.SRT, key, aws.ToString(ch.Srt.Passphrase)), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)

	want := []struct{ name, resolution string }{{"source", "1280x720"}, {"480p30", "854x480"}, {"360p30", "640x360"}, {"160p30", "284x160"}}
	var rs []rendition
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if rs = ladder(t, *ch.PlaybackUrl); len(rs) == len(want) || time.Now().After(deadline) {
			break
		}
	}
	if len(rs) != len(want) {
		t.Fatalf("the multivariant playlist of an SRT-fed STANDARD channel lists %+v", rs)
	}
	for i, w := range want {
		if rs[i].name != w.name || rs[i].resolution != w.resolution || !strings.HasSuffix(rs[i].codecs, ",mp4a.40.2") {
			t.Fatalf("variant %d: %+v, want %s %s", i, rs[i], w.name, w.resolution)
		}
	}

	t.Logf("ladder listed %v after the start", time.Since(started).Round(100*time.Millisecond))
	playCuesInIVSPlayer(t, ctx, c, ch, []string{`{"srt":1}`, `{"srt":2}`, `{"srt":3}`}, pub.stop, "SRT-fed ladder")
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	t.Logf("the player ended %v after the start", time.Since(started).Round(100*time.Millisecond))

	// The ended ladder: aligned, and every rendition decodes.
	checkAligned(t, rs)
	fellBack := func() bool {
		sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn})
		return err != nil || hasEvent(sess.StreamSession.TruncatedEvents, "Transcoder Failure")
	}
	for _, r := range rs {
		checkDecodable(t, r, fellBack)
	}
	t.Logf("whole test %v", time.Since(started).Round(time.Second))
}
