package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestRecordingToS3 is the seed tutorial's step 7 against a real S3 server: ffmpeg publishes
// 40 s to a channel with the seed's recording configuration (thumbnails every 5 s), S3 is
// stopped for 20 s in the middle, and the bucket must then hold exactly IVS's layout with
// nothing missing: event files with the right fields and duration, playlists ffprobe reads
// end to end (plain and byte-range), thumbnails, the timed-metadata cue, and the recording
// events in the stream session.
func TestRecordingToS3(t *testing.T) {
	r := newRecordedChannel(t, "recorded", types.ChannelTypeBasicChannelType, 5, 0)
	s3, n, c, ctx, rc, ch, chID := r.s3, r.n, r.c, r.ctx, r.rc, r.ch, r.chID

	const published = 40 * time.Second
	started := time.Now().UTC()
	pub := publish(t, n.rtmpURL(r.key), pubOptions{Duration: published})
	st := waitLive(t, ctx, c, ch.Arn)
	time.Sleep(8 * time.Second)
	const cue = `{"question":"recorded?"}`
	if _, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(cue)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	s3.stop()
	t.Log("S3 stopped at about 12 s into the stream")
	time.Sleep(20 * time.Second)
	s3.start()
	t.Log("S3 restarted")
	<-pub.exited
	ended := time.Now()
	if pub.err != nil {
		t.Fatalf("ffmpeg: %v\n%s", pub.err, pub.output())
	}

	channelPrefix := "ivs/v1/" + testAccount + "/" + chID + "/"
	keys := waitEventFile(t, s3, seedBucket, channelPrefix, 1, 90*time.Second)
	t.Logf("recording-ended.json %v after ffmpeg finished (ingest grace 1 s)", time.Since(ended).Round(100*time.Millisecond))
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	prefix := prefixes[0]
	m := rePrefix.FindStringSubmatch(prefix)
	at := time.Date(atoi(m[3]), time.Month(atoi(m[4])), atoi(m[5]), atoi(m[6]), atoi(m[7]), 0, 0, time.UTC)
	if d := at.Sub(started.Truncate(time.Minute)); d < 0 || d > time.Minute {
		t.Fatalf("prefix time %v, stream started %v", at, started)
	}
	files, thumbs := checkLayout(t, keys, prefix, []string{"720p30"}, "ended")

	// Event files.
	arn := *ch.Arn
	start := readEvent(t, s3, seedBucket, prefix+"events/recording-started.json")
	end := readEvent(t, s3, seedBucket, prefix+"events/recording-ended.json")
	for _, e := range []eventFile{start, end} {
		if e.Version != "v1" || e.ChannelARN != arn || e.Media.HLS.Path != "media/hls" || e.Media.HLS.Playlist != "master.m3u8" ||
			e.Media.HLS.ByteRangePlaylist != "byte-range-multivariant.m3u8" || len(e.Media.HLS.Renditions) != 1 {
			t.Fatalf("event file: %+v", e)
		}
		r := e.Media.HLS.Renditions[0]
		if r.Path != "720p30" || r.Playlist != "playlist.m3u8" || r.ByteRangePlaylist != "byte-range-variant.m3u8" || r.Width != 1280 || r.Height != 720 {
			t.Fatalf("rendition: %+v", r)
		}
		if th := e.Media.Thumbnails; th == nil || th.Path != "media/thumbnails" || th.Width != 1280 || th.Height != 720 {
			t.Fatalf("thumbnails: %+v", th)
		}
		if lt := e.Media.LatestThumbnail; lt == nil || lt.Path != "media/latest_thumbnail/thumb.jpg" || lt.Width != 1280 {
			t.Fatalf("latest_thumbnail: %+v", lt)
		}
		if _, err := time.Parse("2006-01-02T15:04:05Z", e.RecordingStartedAt); err != nil || e.RecordingStartedAt != start.RecordingStartedAt {
			t.Fatalf("recording_started_at %q", e.RecordingStartedAt)
		}
	}
	if start.RecordingStatus != "RECORDING_STARTED" || start.RecordingEndedAt != "" || start.Media.HLS.DurationMS != nil {
		t.Fatalf("recording-started.json: %+v", start)
	}
	endAt, err := time.Parse("2006-01-02T15:04:05Z", end.RecordingEndedAt)
	if end.RecordingStatus != "RECORDING_ENDED" || err != nil || endAt.Before(started.Add(published-time.Second)) {
		t.Fatalf("recording-ended.json: %+v", end)
	}
	dur := durationOf(end)
	if d := dur - published; d > time.Second || d < -time.Second {
		t.Fatalf("duration_ms %v, published %v", dur, published)
	}
	t.Logf("recorded %v in %d TS files with %d thumbnails, S3 outage included", dur, files["720p30"], thumbs)

	// Playlists: ffprobe plays the whole recording from S3, both ways, with no gap.
	base := s3.publicURL(t, seedBucket) + "/" + prefix + "media/hls/"
	probePlaylist(t, base+"master.m3u8", dur)
	probePlaylist(t, base+"byte-range-multivariant.m3u8", dur)
	pl, _ := s3.get(t, seedBucket, prefix+"media/hls/720p30/playlist.m3u8")
	br, _ := s3.get(t, seedBucket, prefix+"media/hls/720p30/byte-range-variant.m3u8")
	for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-ENDLIST", "#EXT-X-TARGETDURATION:12", "#EXT-X-PROGRAM-DATE-TIME:", "0.ts"} {
		if !strings.Contains(string(pl), want) {
			t.Fatalf("playlist.m3u8 lacks %q:\n%s", want, pl)
		}
	}
	// One byte range per key frame interval (2 s GOP), each file starting again at 0.
	if r := strings.Count(string(br), "#EXT-X-BYTERANGE:"); r < 19 || r > 21 || !strings.Contains(string(br), "#EXT-X-PLAYLIST-TYPE:VOD") ||
		strings.Count(string(br), "@0\n") != files["720p30"] {
		t.Fatalf("byte-range-variant.m3u8 (%d files):\n%s", files["720p30"], br)
	}
	if strings.Contains(string(pl), "#EXT-X-DISCONTINUITY") {
		t.Fatalf("one stream recorded with a discontinuity:\n%s", pl)
	}

	// Thumbnails: one for the first key frame at or after every 5 s of a 2 s GOP stream.
	lastKey := (dur - time.Millisecond).Truncate(2 * time.Second)
	if want := int(lastKey/(5*time.Second)) + 1; thumbs != want {
		t.Fatalf("%d thumbnails for %v, want %d", thumbs, dur, want)
	}
	for i := 0; i < thumbs; i++ {
		b, _ := s3.get(t, seedBucket, prefix+"media/thumbnails/thumb"+strconv.Itoa(i)+".jpg")
		checkJPEG(t, b, 1280, 720)
	}
	latest, _ := s3.get(t, seedBucket, prefix+"media/latest_thumbnail/thumb.jpg")
	checkJPEG(t, latest, 1280, 720)

	// The cue replays from the recording, as an ID3 PES in the TS file of its time.
	var cues []string
	var tsBytes int
	for i := 0; i < files["720p30"]; i++ {
		b, _ := s3.get(t, seedBucket, prefix+"media/hls/720p30/"+strconv.Itoa(i)+".ts")
		cues = append(cues, id3Cues(t, b)...)
		tsBytes += len(b)
	}
	t.Logf("720p30 TS: %.1f MB per minute of stream (what the spool holds per minute of outage)", float64(tsBytes)/dur.Minutes()/1e6)
	if len(cues) != 1 || cues[0] != cue {
		t.Fatalf("cues in the recording: %q", cues)
	}

	// The stream session lists the recording's start and end.
	sess, _ := waitSessionEvents(t, ctx, c, ch.Arn, st.StreamId, 10*time.Second, "Recording Start", "Recording End")
	if evs := sess.TruncatedEvents; hasEvent(evs, "Recording End Failure") {
		t.Fatalf("session events: %+v", evs)
	}
	if rcOut := sess.RecordingConfiguration; rcOut == nil || *rcOut.Arn != *rc.Arn {
		t.Fatalf("session's recording configuration: %+v", rcOut)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
