package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestRecordingAfterKill kills glasscast with SIGKILL while S3 is down and the recording sits
// in the spool, restarts it, brings S3 back, and expects the recording to complete: every
// spooled segment uploaded, final playlists and recording-ended.json written.
func TestRecordingAfterKill(t *testing.T) {
	r := newRecordedChannel(t, "killed", types.ChannelTypeBasicChannelType, 60, 0)
	s3, n, c, ctx, ch, key, chID := r.s3, r.n, r.c, r.ctx, r.ch, r.key, r.chID

	pub := publish(t, n.rtmpURL(key), pubOptions{Size: "640x360", Duration: time.Minute})
	st := waitLive(t, ctx, c, ch.Arn)
	live := time.Now()
	time.Sleep(4 * time.Second)
	s3.stop()
	time.Sleep(12 * time.Second)
	spooled := spoolFiles(t, n.DataDir)
	killed := time.Now()
	n.kill()
	if !strings.Contains(strings.Join(spooled, " "), ".ts") {
		t.Fatalf("nothing spooled before the kill: %v", spooled)
	}
	t.Logf("killed %v into the stream with %d files in the spool", killed.Sub(live).Round(100*time.Millisecond), len(spooled))
	pub.stop()
	n.start()
	time.Sleep(2 * time.Second)
	s3.start()

	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 1, 2*time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	prefix := prefixes[0]
	checkLayout(t, keys, prefix, []string{"360p30"}, "ended")
	end := readEvent(t, s3, seedBucket, prefix+"events/recording-ended.json")
	dur := durationOf(end)
	// Everything up to the kill, less what was still in flight: a segment (2 s) at most. A
	// channel is LIVE only once its first segment is complete, and the recording holds that
	// segment too: up to one segment (2 s) more than the time since LIVE.
	if streamed := killed.Sub(live); dur < streamed-4*time.Second || dur > streamed+3*time.Second {
		t.Fatalf("recorded %v of %v streamed before the kill", dur, streamed)
	}
	probePlaylist(t, s3.publicURL(t, seedBucket)+"/"+prefix+"media/hls/master.m3u8", dur)
	pl, _ := s3.get(t, seedBucket, prefix+"media/hls/360p30/playlist.m3u8")
	if !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Fatalf("final playlist:\n%s", pl)
	}
	// The restarted process finished the recording and emptied its spool.
	deadline := time.Now().Add(10 * time.Second)
	for len(spoolFiles(t, n.DataDir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool not emptied: %v", spoolFiles(t, n.DataDir))
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitSessionEvents(t, ctx, n.ivsClient(), ch.Arn, st.StreamId, 10*time.Second, "Recording Start", "Recording End")
}

// spoolFiles lists the files in the archive's spool.
func spoolFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "archive", "spool")
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestRecordingReconnectWindow publishes twice within the reconnect window (one recording,
// one prefix, a discontinuity between the streams) and once more after it (a second prefix).
func TestRecordingReconnectWindow(t *testing.T) {
	const window = 8
	r := newRecordedChannel(t, "reconnects", types.ChannelTypeBasicChannelType, 60, window)
	s3, n, c, ctx, ch, key, chID := r.s3, r.n, r.c, r.ctx, r.ch, r.key, r.chID
	if r.rc.RecordingReconnectWindowSeconds != window {
		t.Fatalf("recordingReconnectWindowSeconds %d", r.rc.RecordingReconnectWindowSeconds)
	}

	var streams []string
	broadcast := func(d time.Duration) {
		t.Helper()
		p := publish(t, n.rtmpURL(key), pubOptions{Size: "640x360", Duration: d})
		streams = append(streams, *waitLive(t, ctx, c, ch.Arn).StreamId)
		// A cue per stream tells which stream's media a recording holds.
		time.Sleep(3 * time.Second)
		if _, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String("stream " + strconv.Itoa(len(streams)))}); err != nil {
			t.Fatal(err)
		}
		<-p.exited
		waitOffline(t, ctx, c, ch.Arn, 10*time.Second)
	}
	broadcast(8 * time.Second)
	time.Sleep(2 * time.Second) // inside the window
	broadcast(8 * time.Second)
	time.Sleep((window + 4) * time.Second) // past it
	broadcast(6 * time.Second)
	if streams[0] == streams[1] || streams[1] == streams[2] {
		t.Fatalf("streams %v: each publish should be its own stream session", streams)
	}

	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 2, time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 2 {
		t.Fatalf("want two recordings, got %v", prefixes)
	}
	// Prefixes sort by start minute, then by random id: tell them apart by their start time.
	first, second := prefixes[0], prefixes[1]
	e0 := readEvent(t, s3, seedBucket, first+"events/recording-ended.json")
	e1 := readEvent(t, s3, seedBucket, second+"events/recording-ended.json")
	if e0.RecordingStartedAt > e1.RecordingStartedAt {
		first, second, e0, e1 = second, first, e1, e0
	}
	checkLayout(t, keys, first, []string{"360p30"}, "ended")
	checkLayout(t, keys, second, []string{"360p30"}, "ended")
	if d := durationOf(e0); d < 15*time.Second || d > 17*time.Second {
		t.Fatalf("merged recording lasts %v, want the two 8 s streams", d)
	}
	if d := durationOf(e1); d < 5*time.Second || d > 7*time.Second {
		t.Fatalf("second recording lasts %v, want 6 s", d)
	}
	pl, _ := s3.get(t, seedBucket, first+"media/hls/360p30/playlist.m3u8")
	if strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Fatalf("merged playlist should mark the reconnect once:\n%s", pl)
	}
	probePlaylist(t, s3.publicURL(t, seedBucket)+"/"+first+"media/hls/master.m3u8", durationOf(e0))
	for prefix, want := range map[string][]string{first: {"stream 1", "stream 2"}, second: {"stream 3"}} {
		var cues []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, ".ts") {
				b, _ := s3.get(t, seedBucket, k)
				cues = append(cues, id3Cues(t, b)...)
			}
		}
		sort.Strings(cues)
		if !slices.Equal(cues, want) {
			t.Fatalf("recording %s holds the cues %q, want %q", prefix, cues, want)
		}
	}
	// The CLI lists both recordings and presigns a playable URL.
	cli := func(args ...string) string {
		t.Helper()
		args = append(args, "--bucket", seedBucket, "--data-dir", n.DataDir)
		out, err := exec.Command(binary, append([]string{"recordings"}, append(args, s3.serveArgs()...)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("glasscast recordings %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := cli("list", "--channel-id", chID)
	if !strings.Contains(list, first) || !strings.Contains(list, second) || strings.Count(list, "RECORDING_ENDED") != 2 {
		t.Fatalf("recordings list:\n%s", list)
	}
	urls := cli("url", "--prefix", first, "--expires", "10m")
	signed := regexp.MustCompile(`presigned media/hls/master.m3u8 \(valid 10m0s\): (\S+)`).FindStringSubmatch(urls)
	if signed == nil {
		t.Fatalf("recordings url:\n%s", urls)
	}
	if code, body := get(t, signed[1]); code != 200 || !strings.HasPrefix(body, "#EXTM3U") {
		t.Fatalf("presigned master playlist: %d %q", code, body)
	}
	for i, id := range streams {
		sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn, StreamId: aws.String(id)})
		if err != nil || !hasEvent(sess.StreamSession.TruncatedEvents, "Recording End") {
			t.Fatalf("stream %d session events: %v %+v", i, err, sess)
		}
		if started := hasEvent(sess.StreamSession.TruncatedEvents, "Recording Start"); started != (i != 1) {
			t.Fatalf("stream %d: Recording Start listed=%v; the merged stream continues a recording", i, started)
		}
	}
}

// TestRecordingFailsWhenSpoolFull keeps S3 down while a stream outgrows a small spool: the
// segments that do not fit are lost, so the recording ends with recording-failed.json saying
// why, and the session lists a Recording End Failure. What fit is still recorded and plays.
func TestRecordingFailsWhenSpoolFull(t *testing.T) {
	r := newRecordedChannel(t, "overflow", types.ChannelTypeBasicChannelType, 60, 0, "--archive-spool-max-mb", "6")
	r.s3.stop()
	pub := publish(t, r.n.rtmpURL(r.key), pubOptions{Duration: 20 * time.Second})
	st := waitLive(t, r.ctx, r.c, r.ch.Arn)
	<-pub.exited
	waitOffline(t, r.ctx, r.c, r.ch.Arn, 10*time.Second)
	time.Sleep(time.Second)
	r.s3.start()
	keys := waitEventFile(t, r.s3, seedBucket, "ivs/v1/"+testAccount+"/"+r.chID+"/", 1, time.Minute)
	prefix := recordingPrefixes(t, keys)[0]
	checkLayout(t, keys, prefix, []string{"720p30"}, "failed")
	e := readEvent(t, r.s3, seedBucket, prefix+"events/recording-failed.json")
	dur := durationOf(e)
	if e.RecordingStatus != "RECORDING_ENDED_WITH_FAILURE" || !strings.Contains(e.StatusMessage, "spool full") ||
		e.RecordingEndedAt == "" || dur < 2*time.Second || dur > 18*time.Second {
		t.Fatalf("recording-failed.json: %+v (duration %v)", e, dur)
	}
	if _, ok := r.s3.get(t, seedBucket, prefix+"events/recording-ended.json"); ok {
		t.Fatal("both recording-ended.json and recording-failed.json written")
	}
	probePlaylist(t, r.s3.publicURL(t, seedBucket)+"/"+prefix+"media/hls/master.m3u8", dur)
	sess, err := r.c.GetStreamSession(r.ctx, &ivs.GetStreamSessionInput{ChannelArn: r.ch.Arn, StreamId: st.StreamId})
	if err != nil || !hasEvent(sess.StreamSession.TruncatedEvents, "Recording End Failure") {
		t.Fatalf("session events: %v %+v", err, sess)
	}
	t.Logf("%v recorded of 20 s with a 6 MB spool: %s", dur, e.StatusMessage)
}
