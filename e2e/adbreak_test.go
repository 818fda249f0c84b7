package e2e

import (
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"glasscast/metadata"
)

// TestAdBreaks drives ad configurations and InsertAdBreak through the real IVS client, errors
// included, then inserts a 10 s break into a live transcoded (STANDARD) channel: every
// rendition's media playlist, parsed by gohlslib, shows the same splice out and splice in
// (EXT-X-DATERANGE with SCTE-35 splice_inserts at the same PTS, EXT-X-CUE-OUT/IN) before the
// same segment; hls.js in Chromium reads the pair as one valid date range with both SCTE-35
// values; the recording's playlists in S3 (versitygw) carry the same markers.
func TestAdBreaks(t *testing.T) {
	needBrowser(t)
	s3 := startS3(t)
	s3.createBucket(t, seedBucket)
	n := startServe(t, "", append(s3.serveArgs(), "--ingest-reconnect-grace", "1s", "--quotas-ad-configurations", "2")...)
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	rc := recordingConfig(t, ctx, c, seedBucket, 60, 0)
	mt := "arn:aws:mediatailor:us-east-1:000000000000:playbackConfiguration/glasscast-test"

	_, err := c.CreateAdConfiguration(ctx, &ivs.CreateAdConfigurationInput{MediaTailorPlaybackConfigurations: []types.MediaTailorPlaybackConfiguration{}})
	wantCode(t, err, "ValidationException")
	_, err = c.CreateAdConfiguration(ctx, &ivs.CreateAdConfigurationInput{MediaTailorPlaybackConfigurations: []types.MediaTailorPlaybackConfiguration{{PlaybackConfigurationArn: aws.String("arn:aws:s3:::nope")}}})
	wantCode(t, err, "ValidationException")
	var arns []string
	for _, name := range []string{"ads-a", "ads-b"} {
		out, err := c.CreateAdConfiguration(ctx, &ivs.CreateAdConfigurationInput{Name: aws.String(name),
			MediaTailorPlaybackConfigurations: []types.MediaTailorPlaybackConfiguration{{PlaybackConfigurationArn: aws.String(mt)}},
			Tags:                              map[string]string{"team": "ads"}})
		if err != nil {
			t.Fatal(err)
		}
		a := out.AdConfiguration
		if *a.Name != name || len(a.MediaTailorPlaybackConfigurations) != 1 || *a.MediaTailorPlaybackConfigurations[0].PlaybackConfigurationArn != mt || a.Tags["team"] != "ads" ||
			!strings.Contains(*a.Arn, ":ad-configuration/") {
			t.Fatalf("created %+v", a)
		}
		arns = append(arns, *a.Arn)
	}
	_, err = c.CreateAdConfiguration(ctx, &ivs.CreateAdConfigurationInput{
		MediaTailorPlaybackConfigurations: []types.MediaTailorPlaybackConfiguration{{PlaybackConfigurationArn: aws.String(mt)}}})
	wantCode(t, err, "ServiceQuotaExceededException")
	got, err := c.GetAdConfiguration(ctx, &ivs.GetAdConfigurationInput{Arn: &arns[0]})
	if err != nil || *got.AdConfiguration.Name != "ads-a" {
		t.Fatalf("get: %v", err)
	}
	_, err = c.GetAdConfiguration(ctx, &ivs.GetAdConfigurationInput{Arn: aws.String(arns[0][:strings.LastIndexByte(arns[0], '/')+1] + "missing")})
	wantCode(t, err, "ResourceNotFoundException")
	seen := map[string]bool{}
	for p := ivs.NewListAdConfigurationsPaginator(c, &ivs.ListAdConfigurationsInput{MaxResults: aws.Int32(1)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.AdConfigurations) > 1 {
			t.Fatalf("page of %d with maxResults 1", len(page.AdConfigurations))
		}
		for _, s := range page.AdConfigurations {
			seen[*s.Arn] = true
		}
	}
	if len(seen) != 2 {
		t.Fatalf("listed %v", seen)
	}
	tags, err := c.ListTagsForResource(ctx, &ivs.ListTagsForResourceInput{ResourceArn: &arns[1]})
	if err != nil || tags.Tags["team"] != "ads" {
		t.Fatalf("tags %v, %v", tags, err)
	}
	if _, err := c.DeleteAdConfiguration(ctx, &ivs.DeleteAdConfigurationInput{Arn: &arns[1]}); err != nil {
		t.Fatal(err)
	}

	_, err = c.CreateChannel(ctx, &ivs.CreateChannelInput{AdConfigurationArn: &arns[1]})
	wantCode(t, err, "ResourceNotFoundException")
	plain, _ := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("no-ads")})
	_, err = c.InsertAdBreak(ctx, &ivs.InsertAdBreakInput{ChannelArn: plain.Arn, DurationSeconds: aws.Int32(10)})
	wantCode(t, err, "ValidationException")
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("ads"), Type: types.ChannelTypeStandardChannelType,
		InsecureIngest: true, AdConfigurationArn: &arns[0], RecordingConfigurationArn: rc.Arn})
	if ch.AdConfigurationArn == nil || *ch.AdConfigurationArn != arns[0] {
		t.Fatalf("channel's adConfigurationArn %v", ch.AdConfigurationArn)
	}
	_, err = c.DeleteAdConfiguration(ctx, &ivs.DeleteAdConfigurationInput{Arn: &arns[0]})
	wantCode(t, err, "ConflictException")
	list, err := c.ListChannels(ctx, &ivs.ListChannelsInput{FilterByName: aws.String("ads")})
	if err != nil || len(list.Channels) != 1 || list.Channels[0].AdConfigurationArn == nil || *list.Channels[0].AdConfigurationArn != arns[0] {
		t.Fatalf("ListChannels: %v", err)
	}
	_, err = c.InsertAdBreak(ctx, &ivs.InsertAdBreakInput{ChannelArn: ch.Arn, DurationSeconds: aws.Int32(10)})
	wantCode(t, err, "ChannelNotBroadcasting")
	for _, d := range []int32{0, 301} {
		_, err = c.InsertAdBreak(ctx, &ivs.InsertAdBreakInput{ChannelArn: ch.Arn, DurationSeconds: aws.Int32(d)})
		wantCode(t, err, "ValidationException")
	}

	pub := publish(t, n.rtmpURL(key), pubOptions{Size: "640x360", Duration: 26 * time.Second})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	ins, err := c.InsertAdBreak(ctx, &ivs.InsertAdBreakInput{ChannelArn: ch.Arn, DurationSeconds: aws.Int32(10)})
	if err != nil || ins.AdBreakId == nil || *ins.AdBreakId == "" {
		t.Fatalf("InsertAdBreak: %v", err)
	}
	asked := time.Now()
	// hls.js in Chromium plays alongside and reports the break's date range as it parsed it.
	type hlsjsRange struct {
		ID, StartDate, Out, In    string
		Duration, PlannedDuration float64
		Valid                     bool
	}
	var seenByHlsjs *hlsjsRange
	hlsjsDone := make(chan struct{})
	go func() {
		defer close(hlsjsDone)
		nodeScript(t, func(m map[string]json.RawMessage) {
			if raw, ok := m["done"]; ok {
				_ = json.Unmarshal(raw, &seenByHlsjs)
			}
		}, "dateranges.mjs", n.endpoint()+"/player/"+(*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:], *ins.AdBreakId, "40")
	}()
	_, err = c.InsertAdBreak(ctx, &ivs.InsertAdBreakInput{ChannelArn: ch.Arn, DurationSeconds: aws.Int32(5)})
	wantCode(t, err, "ConflictException")

	mv, err := httpGet(ctx, *ch.PlaybackUrl)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(*ch.PlaybackUrl)
	var renditions []string
	for _, line := range strings.Split(string(mv), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			u, _ := base.Parse(line)
			renditions = append(renditions, u.String())
		}
	}
	if len(renditions) < 2 {
		t.Fatalf("a STANDARD channel with %d renditions:\n%s", len(renditions), mv)
	}
	// Wait for the splice in: about 10 s after the splice out, a segment or so after the call.
	type ends struct{ out, in, cueOutMSN, cueInMSN string }
	var first *ends
	for _, r := range renditions {
		var e ends
		for e.in == "" {
			if time.Since(asked) > 30*time.Second {
				t.Fatalf("%s: no splice in 30 s after InsertAdBreak", r)
			}
			time.Sleep(500 * time.Millisecond)
			body, err := httpGet(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := playlist.Unmarshal(body); err != nil {
				t.Fatalf("gohlslib refuses %s: %v\n%s", r, err, body)
			}
			e = ends{}
			var msn int
			for _, line := range strings.Split(string(body), "\n") {
				switch {
				case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
					msn = atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"))
				case strings.HasPrefix(line, "#EXTINF"):
					msn++
				case strings.HasPrefix(line, `#EXT-X-DATERANGE:ID="`+*ins.AdBreakId+`"`) && strings.Contains(line, "SCTE35-OUT="):
					e.out = line
				case strings.HasPrefix(line, `#EXT-X-DATERANGE:ID="`+*ins.AdBreakId+`"`) && strings.Contains(line, "SCTE35-IN="):
					e.in = line
				case strings.HasPrefix(line, "#EXT-X-CUE-OUT:DURATION=10"):
					e.cueOutMSN = strconv.Itoa(msn)
				case line == "#EXT-X-CUE-IN":
					e.cueInMSN = strconv.Itoa(msn)
				}
			}
		}
		if e.out == "" || e.cueOutMSN == "" || e.cueInMSN == "" {
			t.Fatalf("%s: incomplete markers %+v", r, e)
		}
		out, in := spliceOf(t, e.out, "SCTE35-OUT="), spliceOf(t, e.in, "SCTE35-IN=")
		if !out.OutOfNetwork || in.OutOfNetwork || out.EventID != in.EventID || out.BreakDuration == nil || *out.BreakDuration != 900000 {
			t.Fatalf("%s: splice out %+v, in %+v", r, out, in)
		}
		if d := *in.PTS - *out.PTS; d < 900000 || d > 900000+4*90000 {
			t.Fatalf("%s: break of %d ticks", r, d)
		}
		if !strings.Contains(e.out, "PLANNED-DURATION=10,") || !strings.Contains(e.in, ",DURATION=") {
			t.Fatalf("%s: %s / %s", r, e.out, e.in)
		}
		if first == nil {
			first = &e
			t.Logf("splice out before segment %s, in before %s: %s", e.cueOutMSN, e.cueInMSN, e.in)
			continue
		}
		// The same media time in every rendition: same segments, same START-DATE, same PTS.
		if e != *first {
			t.Fatalf("renditions differ:\n%+v\n%+v", e, *first)
		}
	}

	<-hlsjsDone
	if r := seenByHlsjs; r == nil || !r.Valid || r.ID != *ins.AdBreakId || r.PlannedDuration != 10 || r.Duration < 10 ||
		!strings.Contains(first.out, `START-DATE="`+r.StartDate+`"`) ||
		!strings.Contains(first.out, "SCTE35-OUT="+r.Out) || !strings.Contains(first.in, "SCTE35-IN="+r.In) {
		t.Fatalf("hls.js saw the break as %+v; the playlists say\n%s\n%s", r, first.out, first.in)
	}
	t.Logf("hls.js: %+v", *seenByHlsjs)
	if at, err := time.Parse(time.RFC3339Nano, seenByHlsjs.StartDate); err == nil {
		t.Logf("splice out %v (program date time) after InsertAdBreak returned; break of %v s", at.Sub(asked).Round(10*time.Millisecond), seenByHlsjs.Duration)
	}

	// The recording: every rendition's playlist.m3u8 has both date ranges and the cue tags,
	// in front of the file that starts at the splice point.
	<-pub.exited
	chID := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	keys := waitEventFile(t, s3, seedBucket, "ivs/v1/"+testAccount+"/"+chID+"/", 1, time.Minute)
	prefixes := recordingPrefixes(t, keys)
	if len(prefixes) != 1 {
		t.Fatalf("want one recording, got %v", prefixes)
	}
	end := readEvent(t, s3, seedBucket, prefixes[0]+"events/recording-ended.json")
	if len(end.Media.HLS.Renditions) < 2 {
		t.Fatalf("recording of %d renditions", len(end.Media.HLS.Renditions))
	}
	for _, r := range end.Media.HLS.Renditions {
		for _, name := range []string{"playlist.m3u8", "byte-range-variant.m3u8"} {
			body, _ := s3.get(t, seedBucket, prefixes[0]+"media/hls/"+r.Path+"/"+name)
			if _, err := playlist.Unmarshal(body); err != nil {
				t.Fatalf("gohlslib refuses the recording's %s/%s: %v\n%s", r.Path, name, err, body)
			}
			for _, want := range []string{first.out, first.in, "#EXT-X-CUE-OUT:DURATION=10\n", "#EXT-X-CUE-IN\n#EXTINF"} {
				if !strings.Contains(string(body), want) {
					t.Fatalf("the recording's %s/%s lacks %q:\n%s", r.Path, name, want, body)
				}
			}
		}
	}
	// The stream has ended: detached, the ad configuration can go.
	if _, err := c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, AdConfigurationArn: aws.String("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAdConfiguration(ctx, &ivs.DeleteAdConfigurationInput{Arn: &arns[0]}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAdConfiguration(ctx, &ivs.GetAdConfigurationInput{Arn: &arns[0]})
	wantCode(t, err, "ResourceNotFoundException")
}

func spliceOf(t *testing.T, line, attr string) metadata.SpliceInsert {
	t.Helper()
	v := line[strings.Index(line, attr)+len(attr):]
	v, _, _ = strings.Cut(v, ",")
	b, err := hex.DecodeString(strings.TrimPrefix(v, "0x"))
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	s, err := metadata.ParseSpliceInsert(b)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return s
}
