package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestRecordingConfigurationStates covers the control API side of recording: CREATING, then
// ACTIVE once the bucket answers or CREATE_FAILED when it does not exist, validation of every
// field with IVS's ranges, a Recording Start Failure on a stream whose configuration failed
// (the stream itself stays live), and the ConflictException that protects a configuration in
// use.
func TestRecordingConfigurationStates(t *testing.T) {
	s3 := startS3(t)
	s3.createBucket(t, "good-bucket")
	n := startServe(t, "", append(s3.serveArgs(), "--ingest-reconnect-grace", "1s")...)
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)

	dest := func(b string) *types.DestinationConfiguration {
		return &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(b)}}
	}
	good, err := c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("good-bucket")})
	if err != nil {
		t.Fatal(err)
	}
	if s := good.RecordingConfiguration.State; s != types.RecordingConfigurationStateCreating {
		t.Fatalf("new configuration is %s, want CREATING", s)
	}
	waitConfigState(t, ctx, c, good.RecordingConfiguration.Arn, types.RecordingConfigurationStateActive)
	bad, err := c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{DestinationConfiguration: dest("no-such-bucket")})
	if err != nil {
		t.Fatal(err)
	}
	waitConfigState(t, ctx, c, bad.RecordingConfiguration.Arn, types.RecordingConfigurationStateCreateFailed)

	for name, in := range map[string]*ivs.CreateRecordingConfigurationInput{
		"short bucket":        {DestinationConfiguration: dest("ab")},
		"bucket pattern":      {DestinationConfiguration: dest("Has_Upper")},
		"no destination":      {DestinationConfiguration: &types.DestinationConfiguration{}},
		"name too long":       {DestinationConfiguration: dest("good-bucket"), Name: aws.String(strings.Repeat("n", 129))},
		"name pattern":        {DestinationConfiguration: dest("good-bucket"), Name: aws.String("no spaces")},
		"window over 300":     {DestinationConfiguration: dest("good-bucket"), RecordingReconnectWindowSeconds: 301},
		"window negative":     {DestinationConfiguration: dest("good-bucket"), RecordingReconnectWindowSeconds: -1},
		"interval 0":          {DestinationConfiguration: dest("good-bucket"), ThumbnailConfiguration: &types.ThumbnailConfiguration{TargetIntervalSeconds: aws.Int64(0)}},
		"interval 61":         {DestinationConfiguration: dest("good-bucket"), ThumbnailConfiguration: &types.ThumbnailConfiguration{TargetIntervalSeconds: aws.Int64(61)}},
		"recording mode":      {DestinationConfiguration: dest("good-bucket"), ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: "SOMETIMES"}},
		"resolution":          {DestinationConfiguration: dest("good-bucket"), ThumbnailConfiguration: &types.ThumbnailConfiguration{Resolution: "UHD"}},
		"storage":             {DestinationConfiguration: dest("good-bucket"), ThumbnailConfiguration: &types.ThumbnailConfiguration{Storage: []types.ThumbnailConfigurationStorage{"ALL"}}},
		"selection":           {DestinationConfiguration: dest("good-bucket"), RenditionConfiguration: &types.RenditionConfiguration{RenditionSelection: "SOME"}},
		"custom without list": {DestinationConfiguration: dest("good-bucket"), RenditionConfiguration: &types.RenditionConfiguration{RenditionSelection: types.RenditionConfigurationRenditionSelectionCustom}},
		"rendition class":     {DestinationConfiguration: dest("good-bucket"), RenditionConfiguration: &types.RenditionConfiguration{RenditionSelection: types.RenditionConfigurationRenditionSelectionCustom, Renditions: []types.RenditionConfigurationRendition{"4K"}}},
	} {
		_, err := c.CreateRecordingConfiguration(ctx, in)
		if errorCode(err) != "ValidationException" {
			t.Errorf("%s: want ValidationException, got %v", name, err)
		}
	}

	// A stream on a channel whose configuration failed goes live unrecorded.
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("failing"), Type: types.ChannelTypeBasicChannelType,
		InsecureIngest: true, RecordingConfigurationArn: bad.RecordingConfiguration.Arn})
	pub := publish(t, n.rtmpURL(key), pubOptions{Size: "320x180", Duration: 20 * time.Second})
	st := waitLive(t, ctx, c, ch.Arn)
	deadline := time.Now().Add(15 * time.Second)
	for {
		sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn, StreamId: st.StreamId})
		if err == nil && hasEvent(sess.StreamSession.TruncatedEvents, "Recording Start Failure") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Recording Start Failure: %v %+v", err, sess)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: ch.Arn}); err != nil {
		t.Fatalf("the stream must stay live: %v", err)
	}
	pub.stop()
	if keys := s3.keys(t, "good-bucket", ""); len(keys) != 0 {
		t.Fatalf("objects written for an unrecorded stream: %v", keys)
	}

	// In use: ConflictException; detached: deleted.
	_, err = c.DeleteRecordingConfiguration(ctx, &ivs.DeleteRecordingConfigurationInput{Arn: bad.RecordingConfiguration.Arn})
	wantCode(t, err, "ConflictException")
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	if _, err := c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, RecordingConfigurationArn: aws.String("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRecordingConfiguration(ctx, &ivs.DeleteRecordingConfigurationInput{Arn: bad.RecordingConfiguration.Arn}); err != nil {
		t.Fatal(err)
	}
}

// TestRecordingWithoutS3 runs serve with no S3 endpoint configured: recording configurations
// become ACTIVE and recordings land in the data folder, one folder per bucket, in IVS's layout.
func TestRecordingWithoutS3(t *testing.T) {
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	rc := recordingConfig(t, ctx, c, "local-recordings", 60, 0)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("local"), Type: types.ChannelTypeBasicChannelType,
		InsecureIngest: true, RecordingConfigurationArn: rc.Arn})
	pub := publish(t, n.rtmpURL(key), pubOptions{Size: "320x180", Duration: 6 * time.Second})
	waitLive(t, ctx, c, ch.Arn)
	<-pub.exited
	chID := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	root := filepath.Join(n.DataDir, "recordings", "local-recordings", "ivs", "v1", testAccount, chID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ended, _ := filepath.Glob(filepath.Join(root, "*", "*", "*", "*", "*", "*", "events", "recording-ended.json"))
		if len(ended) == 1 {
			rec := filepath.Dir(filepath.Dir(ended[0]))
			for _, f := range []string{"media/hls/master.m3u8", "media/hls/180p30/playlist.m3u8", "media/hls/180p30/0.ts", "media/thumbnails/thumb0.jpg"} {
				if _, err := os.Stat(filepath.Join(rec, f)); err != nil {
					t.Fatalf("local recording lacks %s: %v", f, err)
				}
			}
			probePlaylist(t, filepath.Join(rec, "media/hls/master.m3u8"), 6*time.Second)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recording under %s", root)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRecordingArchiveApart runs the recorder as its own process, `glasscast archive`, joined
// to a serve node (whose own recorder is off) by NATS: it settles the configuration and
// records the stream from the origin over HTTP, as named in the live registration.
func TestRecordingArchiveApart(t *testing.T) {
	s3 := startS3(t)
	s3.createBucket(t, seedBucket)
	natsAddr := freePort(t)
	n := startServe(t, "", "--archive-enabled=false", "--nats-listen", natsAddr, "--origin-listen", freePort(t),
		"--ingest-reconnect-grace", "1s")
	logOnFailure(t, n)
	ar := &node{t: t, DataDir: t.TempDir(), HTTP: freePort(t)}
	ar.args = append([]string{"archive", "--data-dir", ar.DataDir, "--http-listen", ar.HTTP, "--https-listen", "",
		"--nats-url", "nats://" + natsAddr, "--node-name", "archive2", "--log-level", "debug"}, s3.serveArgs()...)
	ar.args = append(ar.args, natsLogin(t, n)...)
	ar.start()
	t.Cleanup(ar.stop)
	logOnFailure(t, ar)

	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	rc := recordingConfig(t, ctx, c, seedBucket, 60, 0)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("apart"), Type: types.ChannelTypeBasicChannelType,
		InsecureIngest: true, RecordingConfigurationArn: rc.Arn})
	pub := publish(t, n.rtmpURL(key), pubOptions{Size: "320x180", Duration: 8 * time.Second})
	waitLive(t, ctx, c, ch.Arn)
	<-pub.exited
	chID := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 1, time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	checkLayout(t, keys, prefixes[0], []string{"180p30"}, "ended")
	dur := durationOf(readEvent(t, s3, seedBucket, prefixes[0]+"events/recording-ended.json"))
	if dur < 7*time.Second || dur > 9*time.Second {
		t.Fatalf("recorded %v of 8 s", dur)
	}
	probePlaylist(t, s3.publicURL(t, seedBucket)+"/"+prefixes[0]+"media/hls/master.m3u8", dur)
	if !strings.Contains(ar.Logs(), "recording started") || strings.Contains(n.Logs(), "recording started") {
		t.Fatal("the recording was not made by the separate archive process")
	}
}

// TestRecordingTranscodedChannel records a STANDARD channel: every rendition of its ladder,
// the ones the transcoder adds after the source included, each with its playlists and files.
func TestRecordingTranscodedChannel(t *testing.T) {
	r := newRecordedChannel(t, "ladder", types.ChannelTypeStandardChannelType, 60, 0)
	s3 := r.s3
	pub := publish(t, r.n.rtmpURL(r.key), pubOptions{Duration: 12 * time.Second})
	waitLive(t, r.ctx, r.c, r.ch.Arn)
	<-pub.exited
	chID := r.chID
	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 1, time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	p := prefixes[0]
	renditions := []string{"720p30", "480p30", "360p30", "160p30"}
	checkLayout(t, keys, p, renditions, "ended")
	end := readEvent(t, s3, seedBucket, p+"events/recording-ended.json")
	var got []string
	for _, r := range end.Media.HLS.Renditions {
		got = append(got, r.Path)
	}
	if strings.Join(got, ",") != strings.Join(renditions, ",") {
		t.Fatalf("recording-ended.json lists %v, want %v", got, renditions)
	}
	master, _ := s3.get(t, seedBucket, p+"media/hls/master.m3u8")
	for _, r := range renditions {
		if !strings.Contains(string(master), r+"/playlist.m3u8") {
			t.Fatalf("master.m3u8 lacks %s:\n%s", r, master)
		}
	}
	base := s3.publicURL(t, seedBucket) + "/" + p + "media/hls/"
	for _, r := range renditions {
		// Each rendition on its own, over the whole stream: the ladder starts with the source.
		probePlaylist(t, base+r+"/playlist.m3u8", durationOf(end))
	}
}
