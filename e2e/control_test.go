package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

func publicKeyPEM(t *testing.T, curve elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestControlAPI drives every IVS control-plane operation through the real aws-sdk-go-v2 client,
// including the error cases, pagination, signatures and a restart that must keep everything.
func TestControlAPI(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	reARN := regexp.MustCompile(`^arn:aws:ivs:us-east-1:000000000000:channel/[a-zA-Z0-9]{12}$`)

	// --- channels ---
	created, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String("my-channel")})
	if err != nil {
		t.Fatal(err)
	}
	ch := created.Channel
	if !reARN.MatchString(*ch.Arn) || ch.LatencyMode != types.ChannelLatencyModeLowLatency || ch.Type != types.ChannelTypeStandardChannelType ||
		ch.Authorized || ch.InsecureIngest || *ch.Name != "my-channel" {
		t.Fatalf("defaults: %+v", ch)
	}
	id := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	if want := n.endpoint() + "/api/video/v1/us-east-1.000000000000.channel." + id + ".m3u8"; *ch.PlaybackUrl != want {
		t.Fatalf("playbackUrl %q, want %q", *ch.PlaybackUrl, want)
	}
	if *ch.IngestEndpoint != "127.0.0.1" {
		t.Fatalf("ingestEndpoint %q", *ch.IngestEndpoint)
	}
	sk := created.StreamKey
	if !regexp.MustCompile(`^sk_us-east-1_[a-zA-Z0-9]{36}$`).MatchString(*sk.Value) || *sk.ChannelArn != *ch.Arn {
		t.Fatalf("stream key %+v", sk)
	}

	got, err := c.GetChannel(ctx, &ivs.GetChannelInput{Arn: ch.Arn})
	if err != nil || *got.Channel.Arn != *ch.Arn || *got.Channel.Name != "my-channel" {
		t.Fatalf("GetChannel: %v %+v", err, got)
	}

	adv, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String("adv"), Type: types.ChannelTypeAdvancedHDChannelType,
		LatencyMode: types.ChannelLatencyModeNormalLatency, Authorized: true, InsecureIngest: true, Tags: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if a := adv.Channel; a.Preset != types.TranscodePresetHigherBandwidthTranscodePreset || !a.Authorized || !a.InsecureIngest ||
		a.LatencyMode != types.ChannelLatencyModeNormalLatency || a.Tags["team"] != "a" {
		t.Fatalf("advanced channel: %+v", a)
	}

	up, err := c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, Name: aws.String("renamed"), Type: types.ChannelTypeBasicChannelType})
	if err != nil || *up.Channel.Name != "renamed" || up.Channel.Type != types.ChannelTypeBasicChannelType || up.Channel.LatencyMode != types.ChannelLatencyModeLowLatency {
		t.Fatalf("UpdateChannel: %v %+v", err, up)
	}
	_, err = c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, Preset: types.TranscodePresetConstrainedBandwidthTranscodePreset})
	wantCode(t, err, "ValidationException")

	missing := "arn:aws:ivs:us-east-1:000000000000:channel/AAAAAAAAAAAA"
	bg, err := c.BatchGetChannel(ctx, &ivs.BatchGetChannelInput{Arns: []string{*ch.Arn, missing}})
	if err != nil || len(bg.Channels) != 1 || len(bg.Errors) != 1 || *bg.Errors[0].Arn != missing || *bg.Errors[0].Code != "ResourceNotFoundException" {
		t.Fatalf("BatchGetChannel: %v %+v", err, bg)
	}

	// --- error shapes ---
	_, err = c.GetChannel(ctx, &ivs.GetChannelInput{Arn: aws.String(missing)})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.GetChannel(ctx, &ivs.GetChannelInput{Arn: aws.String("arn:aws:ivs:us-east-1:000000000000:stream/nope")})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String("bad name!")})
	wantCode(t, err, "ValidationException")
	var ve *types.ValidationException
	if !errors.As(err, &ve) || ve.ExceptionMessage == nil || !strings.Contains(*ve.ExceptionMessage, "'name'") {
		t.Fatalf("validation error should name the field in exceptionMessage: %v", err)
	}
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String(strings.Repeat("a", 129))})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{LatencyMode: "FAST"})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{Tags: map[string]string{"aws:reserved": "x"}})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{RecordingConfigurationArn: aws.String("arn:aws:ivs:us-east-1:000000000000:recording-configuration/AAAAAAAAAAAA")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.ListChannels(ctx, &ivs.ListChannelsInput{FilterByName: aws.String("a"), FilterByRecordingConfigurationArn: aws.String("arn:aws:ivs:us-east-1:000000000000:recording-configuration/AAAAAAAAAAAA")})
	wantCode(t, err, "ConflictException")
	_, err = c.ListChannels(ctx, &ivs.ListChannelsInput{MaxResults: aws.Int32(101)})
	wantCode(t, err, "ValidationException")
	_, err = c.ListChannels(ctx, &ivs.ListChannelsInput{NextToken: aws.String("not-a-token!")})
	wantCode(t, err, "ValidationException")

	// --- pagination over 120 channels ---
	var wg sync.WaitGroup
	errs := make(chan error, 120)
	sem := make(chan struct{}, 8)
	for i := 0; i < 118; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String(fmt.Sprintf("bulk-%03d", i))})
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	pages := 0
	p := ivs.NewListChannelsPaginator(c, &ivs.ListChannelsInput{MaxResults: aws.Int32(7)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Channels) > 7 {
			t.Fatalf("page of %d > maxResults 7", len(out.Channels))
		}
		for _, s := range out.Channels {
			if seen[*s.Arn] {
				t.Fatalf("channel %s listed twice", *s.Arn)
			}
			seen[*s.Arn] = true
		}
	}
	if len(seen) != 120 || pages != 18 {
		t.Fatalf("paginated %d channels in %d pages, want 120 in 18", len(seen), pages)
	}
	byName, err := c.ListChannels(ctx, &ivs.ListChannelsInput{FilterByName: aws.String("bulk-01")})
	if err != nil || len(byName.Channels) != 10 {
		t.Fatalf("filterByName bulk-01: %v, %d channels", err, len(byName.Channels))
	}

	// --- stream keys ---
	k2, err := c.CreateStreamKey(ctx, &ivs.CreateStreamKeyInput{ChannelArn: ch.Arn, Tags: map[string]string{"rotation": "next"}})
	if err != nil || *k2.StreamKey.Value == *sk.Value {
		t.Fatalf("CreateStreamKey: %v", err)
	}
	_, err = c.CreateStreamKey(ctx, &ivs.CreateStreamKeyInput{ChannelArn: ch.Arn})
	wantCode(t, err, "ServiceQuotaExceededException")
	_, err = c.CreateStreamKey(ctx, &ivs.CreateStreamKeyInput{ChannelArn: aws.String(missing)})
	wantCode(t, err, "ResourceNotFoundException")
	gk, err := c.GetStreamKey(ctx, &ivs.GetStreamKeyInput{Arn: sk.Arn})
	if err != nil || *gk.StreamKey.Value != *sk.Value {
		t.Fatalf("GetStreamKey: %v", err)
	}
	bk, err := c.BatchGetStreamKey(ctx, &ivs.BatchGetStreamKeyInput{Arns: []string{*sk.Arn, *k2.StreamKey.Arn, "arn:aws:ivs:us-east-1:000000000000:stream-key/AAAAAAAAAAAA"}})
	if err != nil || len(bk.StreamKeys) != 2 || len(bk.Errors) != 1 {
		t.Fatalf("BatchGetStreamKey: %v %+v", err, bk)
	}
	lk, err := c.ListStreamKeys(ctx, &ivs.ListStreamKeysInput{ChannelArn: ch.Arn})
	if err != nil || len(lk.StreamKeys) != 2 {
		t.Fatalf("ListStreamKeys: %v %+v", err, lk)
	}
	if _, err := c.DeleteStreamKey(ctx, &ivs.DeleteStreamKeyInput{Arn: k2.StreamKey.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetStreamKey(ctx, &ivs.GetStreamKeyInput{Arn: k2.StreamKey.Arn})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.DeleteStreamKey(ctx, &ivs.DeleteStreamKeyInput{Arn: k2.StreamKey.Arn})
	wantCode(t, err, "ResourceNotFoundException")

	// --- playback key pairs ---
	pub := publicKeyPEM(t, elliptic.P384())
	kp, err := c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(pub), Name: aws.String("viewer-tokens")})
	if err != nil || !regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`).MatchString(*kp.KeyPair.Fingerprint) {
		t.Fatalf("ImportPlaybackKeyPair: %v %+v", err, kp)
	}
	_, err = c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(pub)})
	wantCode(t, err, "ConflictException")
	_, err = c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(publicKeyPEM(t, elliptic.P256()))})
	wantCode(t, err, "ValidationException")
	_, err = c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String("garbage")})
	wantCode(t, err, "ValidationException")
	gkp, err := c.GetPlaybackKeyPair(ctx, &ivs.GetPlaybackKeyPairInput{Arn: kp.KeyPair.Arn})
	if err != nil || *gkp.KeyPair.Fingerprint != *kp.KeyPair.Fingerprint || *gkp.KeyPair.Name != "viewer-tokens" {
		t.Fatalf("GetPlaybackKeyPair: %v", err)
	}
	kp2, err := c.ImportPlaybackKeyPair(ctx, &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(publicKeyPEM(t, elliptic.P384()))})
	if err != nil {
		t.Fatal(err)
	}
	lkp, err := c.ListPlaybackKeyPairs(ctx, &ivs.ListPlaybackKeyPairsInput{})
	if err != nil || len(lkp.KeyPairs) != 2 {
		t.Fatalf("ListPlaybackKeyPairs: %v %+v", err, lkp)
	}
	if _, err := c.DeletePlaybackKeyPair(ctx, &ivs.DeletePlaybackKeyPairInput{Arn: kp2.KeyPair.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPlaybackKeyPair(ctx, &ivs.GetPlaybackKeyPairInput{Arn: kp2.KeyPair.Arn})
	wantCode(t, err, "ResourceNotFoundException")

	// --- recording configurations (the seed tutorial's) ---
	rc, err := c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{
		Name:                     aws.String("stream-recordings"),
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String("my-stream-recordings-123456789012")}},
		ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval, TargetIntervalSeconds: aws.Int64(60),
			Storage: []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageLatest, types.ThumbnailConfigurationStorageSequential}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := rc.RecordingConfiguration; *r.DestinationConfiguration.S3.BucketName != "my-stream-recordings-123456789012" ||
		r.ThumbnailConfiguration.RecordingMode != types.RecordingModeInterval || len(r.ThumbnailConfiguration.Storage) != 2 ||
		r.RenditionConfiguration.RenditionSelection != types.RenditionConfigurationRenditionSelectionAll {
		t.Fatalf("recording configuration: %+v", r)
	}
	_, err = c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String("Bad_Bucket")}}})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String("ok-bucket")}},
		ThumbnailConfiguration:   &types.ThumbnailConfiguration{TargetIntervalSeconds: aws.Int64(61)}})
	wantCode(t, err, "ValidationException")
	// CREATING until the archive has reached the bucket (without S3 configured, a local folder).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		grc, err := c.GetRecordingConfiguration(ctx, &ivs.GetRecordingConfigurationInput{Arn: rc.RecordingConfiguration.Arn})
		if err == nil && grc.RecordingConfiguration.State == types.RecordingConfigurationStateActive {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("GetRecordingConfiguration: %v %+v", err, grc)
		}
	}
	lrc, err := c.ListRecordingConfigurations(ctx, &ivs.ListRecordingConfigurationsInput{})
	if err != nil || len(lrc.RecordingConfigurations) != 1 {
		t.Fatalf("ListRecordingConfigurations: %v", err)
	}
	if _, err := c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, RecordingConfigurationArn: rc.RecordingConfiguration.Arn}); err != nil {
		t.Fatal(err)
	}
	byRC, err := c.ListChannels(ctx, &ivs.ListChannelsInput{FilterByRecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	if err != nil || len(byRC.Channels) != 1 || *byRC.Channels[0].Arn != *ch.Arn {
		t.Fatalf("filterByRecordingConfigurationArn: %v %+v", err, byRC)
	}
	_, err = c.DeleteRecordingConfiguration(ctx, &ivs.DeleteRecordingConfigurationInput{Arn: rc.RecordingConfiguration.Arn})
	wantCode(t, err, "ConflictException")

	// --- tags on every resource type, and concurrent tagging losing nothing ---
	for _, arn := range []string{*ch.Arn, *sk.Arn, *kp.KeyPair.Arn, *rc.RecordingConfiguration.Arn} {
		if _, err := c.TagResource(ctx, &ivs.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"env": "test", "x": "1"}}); err != nil {
			t.Fatalf("TagResource %s: %v", arn, err)
		}
		if _, err := c.UntagResource(ctx, &ivs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"x"}}); err != nil {
			t.Fatalf("UntagResource %s: %v", arn, err)
		}
		lt, err := c.ListTagsForResource(ctx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil || len(lt.Tags) != 1 || lt.Tags["env"] != "test" {
			t.Fatalf("ListTagsForResource %s: %v %v", arn, err, lt)
		}
	}
	_, err = c.TagResource(ctx, &ivs.TagResourceInput{ResourceArn: aws.String(missing), Tags: map[string]string{"a": "b"}})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.ListTagsForResource(ctx, &ivs.ListTagsForResourceInput{ResourceArn: aws.String("not-an-arn")})
	wantCode(t, err, "ValidationException")
	var tw sync.WaitGroup
	for i := 0; i < 20; i++ {
		tw.Add(1)
		go func(i int) {
			defer tw.Done()
			if _, err := c.TagResource(ctx, &ivs.TagResourceInput{ResourceArn: adv.Channel.Arn, Tags: map[string]string{fmt.Sprintf("k%02d", i): "v"}}); err != nil {
				t.Errorf("concurrent TagResource: %v", err)
			}
		}(i)
	}
	tw.Wait()
	lt, err := c.ListTagsForResource(ctx, &ivs.ListTagsForResourceInput{ResourceArn: adv.Channel.Arn})
	if err != nil || len(lt.Tags) != 21 {
		t.Fatalf("after 20 concurrent TagResource calls: %v, %d tags, want 21 (no lost update)", err, len(lt.Tags))
	}

	// --- live state while nothing is broadcasting ---
	_, err = c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: ch.Arn})
	wantCode(t, err, "ChannelNotBroadcasting")
	_, err = c.StopStream(ctx, &ivs.StopStreamInput{ChannelArn: ch.Arn})
	wantCode(t, err, "ChannelNotBroadcasting")
	_, err = c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(`{"type":"poll"}`)})
	wantCode(t, err, "ChannelNotBroadcasting")
	_, err = c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(strings.Repeat("x", 1025))})
	wantCode(t, err, "ValidationException")
	ls, err := c.ListStreams(ctx, &ivs.ListStreamsInput{})
	if err != nil || len(ls.Streams) != 0 {
		t.Fatalf("ListStreams: %v %+v", err, ls)
	}
	_, err = c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn})
	wantCode(t, err, "ResourceNotFoundException")
	lss, err := c.ListStreamSessions(ctx, &ivs.ListStreamSessionsInput{ChannelArn: ch.Arn})
	if err != nil || len(lss.StreamSessions) != 0 {
		t.Fatalf("ListStreamSessions: %v", err)
	}

	// --- signatures ---
	_, err = n.ivsClient("wrong-secret").ListChannels(ctx, &ivs.ListChannelsInput{})
	wantCode(t, err, "InvalidSignatureException")
	other := ivs.New(ivs.Options{Region: testRegion, BaseEndpoint: aws.String(n.endpoint()), RetryMaxAttempts: 1, HTTPClient: sdkHTTP,
		Credentials: staticCreds("AKGCUNKNOWNUNKNOWN00", testSecret)})
	_, err = other.ListChannels(ctx, &ivs.ListChannelsInput{})
	wantCode(t, err, "UnrecognizedClientException")
	resp, err := http.Post(n.endpoint()+"/ListChannels", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned request: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}

	// --- deletion ---
	if _, err := c.DeleteChannel(ctx, &ivs.DeleteChannelInput{Arn: adv.Channel.Arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteChannel(ctx, &ivs.DeleteChannelInput{Arn: adv.Channel.Arn})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.GetStreamKey(ctx, &ivs.GetStreamKeyInput{Arn: adv.StreamKey.Arn})
	wantCode(t, err, "ResourceNotFoundException") // a channel's keys go with it

	// --- restart, graceful then a crash: everything stays ---
	for _, hard := range []bool{false, true} {
		n.restart(hard)
		c = n.ivsClient()
		all := 0
		p := ivs.NewListChannelsPaginator(c, &ivs.ListChannelsInput{})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("after restart (hard=%v): %v", hard, err)
			}
			all += len(out.Channels)
		}
		if all != 119 {
			t.Fatalf("after restart (hard=%v): %d channels, want 119", hard, all)
		}
		g, err := c.GetChannel(ctx, &ivs.GetChannelInput{Arn: ch.Arn})
		if err != nil || *g.Channel.Name != "renamed" || *g.Channel.RecordingConfigurationArn != *rc.RecordingConfiguration.Arn || g.Channel.Tags["env"] != "test" {
			t.Fatalf("after restart (hard=%v): GetChannel %v %+v", hard, err, g)
		}
		k, err := c.GetStreamKey(ctx, &ivs.GetStreamKeyInput{Arn: sk.Arn})
		if err != nil || *k.StreamKey.Value != *sk.Value {
			t.Fatalf("after restart (hard=%v): GetStreamKey %v", hard, err)
		}
		if _, err := c.GetPlaybackKeyPair(ctx, &ivs.GetPlaybackKeyPairInput{Arn: kp.KeyPair.Arn}); err != nil {
			t.Fatalf("after restart (hard=%v): GetPlaybackKeyPair %v", hard, err)
		}
		if _, err := c.GetRecordingConfiguration(ctx, &ivs.GetRecordingConfigurationInput{Arn: rc.RecordingConfiguration.Arn}); err != nil {
			t.Fatalf("after restart (hard=%v): GetRecordingConfiguration %v", hard, err)
		}
	}

	// Detach, then the recording configuration can go.
	if _, err := c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, RecordingConfigurationArn: aws.String("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRecordingConfiguration(ctx, &ivs.DeleteRecordingConfigurationInput{Arn: rc.RecordingConfiguration.Arn}); err != nil {
		t.Fatal(err)
	}
}

// TestChannelQuota checks the account-wide channel quota.
func TestChannelQuota(t *testing.T) {
	n := startServe(t, "", "--quotas-channels", "2")
	c := n.ivsClient()
	ctx := ctxT(t, time.Minute)
	for i := 0; i < 2; i++ {
		if _, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{})
	wantCode(t, err, "ServiceQuotaExceededException")
}

// TestGeneratedCredentials checks that a first start without configured keys creates one,
// shows it, and accepts it; a second start reuses it.
func TestGeneratedCredentials(t *testing.T) {
	dir := t.TempDir()
	n := &node{t: t, DataDir: dir, HTTP: freePort(t)}
	n.args = []string{"serve", "--data-dir", dir, "--http-listen", n.HTTP, "--https-listen", freePort(t),
		"--ingest-rtmp-listen", freePort(t), "--ingest-rtmps-listen", freePort(t)}
	n.start()
	t.Cleanup(n.stop)
	m := regexp.MustCompile(`AWS_ACCESS_KEY_ID=(\S+)\s+export AWS_SECRET_ACCESS_KEY=(\S+)`).FindStringSubmatch(waitLog(t, n, "AWS_SECRET_ACCESS_KEY"))
	if m == nil {
		t.Fatalf("credentials not shown:\n%s", n.Logs())
	}
	c := ivs.New(ivs.Options{Region: testRegion, BaseEndpoint: aws.String(n.endpoint()), Credentials: staticCreds(m[1], m[2]), RetryMaxAttempts: 1, HTTPClient: sdkHTTP})
	ctx := ctxT(t, time.Minute)
	if _, err := c.ListChannels(ctx, &ivs.ListChannelsInput{}); err != nil {
		t.Fatalf("generated key refused: %v", err)
	}
	if strings.Count(n.Logs(), m[2]) != 1 {
		t.Fatalf("the secret must be shown exactly once")
	}
	n.restart(false)
	if strings.Count(n.Logs(), "AWS_SECRET_ACCESS_KEY") != 1 {
		t.Fatalf("second start must reuse the stored key, not print a new one")
	}
	if _, err := c.ListChannels(ctx, &ivs.ListChannelsInput{}); err != nil {
		t.Fatalf("stored key refused after restart: %v", err)
	}
}

func waitLog(t *testing.T, n *node, substr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := n.Logs(); strings.Contains(l, substr) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never contained %q:\n%s", substr, n.Logs())
	return ""
}
