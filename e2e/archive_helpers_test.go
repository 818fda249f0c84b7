package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asticode/go-astits"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"glasscast/metadata"
)

// seedBucket is the seed tutorial's bucket name.
const seedBucket = "my-stream-recordings-123456789012"

// recordingConfig creates the seed tutorial's recording configuration (thumbnail interval
// lowered as asked) and waits until it is ACTIVE.
func recordingConfig(t *testing.T, ctx context.Context, c *ivs.Client, bucket string, interval int64, window int32) *types.RecordingConfiguration {
	t.Helper()
	out, err := c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{
		Name:                     aws.String("stream-recordings"),
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
		ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval, TargetIntervalSeconds: aws.Int64(interval),
			Storage: []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageLatest, types.ThumbnailConfigurationStorageSequential}},
		RecordingReconnectWindowSeconds: window,
	})
	if err != nil {
		t.Fatal(err)
	}
	return waitConfigState(t, ctx, c, out.RecordingConfiguration.Arn, types.RecordingConfigurationStateActive)
}

func waitConfigState(t *testing.T, ctx context.Context, c *ivs.Client, arn *string, want types.RecordingConfigurationState) *types.RecordingConfiguration {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, err := c.GetRecordingConfiguration(ctx, &ivs.GetRecordingConfigurationInput{Arn: arn})
		if err == nil && g.RecordingConfiguration.State == want {
			return g.RecordingConfiguration
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording configuration not %s after 30 s: %v %+v", want, err, g)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventFile is events/recording-*.json as IVS documents it.
type eventFile struct {
	Version            string `json:"version"`
	ChannelARN         string `json:"channel_arn"`
	RecordingStartedAt string `json:"recording_started_at"`
	RecordingEndedAt   string `json:"recording_ended_at"`
	RecordingStatus    string `json:"recording_status"`
	StatusMessage      string `json:"recording_status_message"`
	Media              struct {
		HLS struct {
			DurationMS        *int64 `json:"duration_ms"`
			Path              string `json:"path"`
			Playlist          string `json:"playlist"`
			ByteRangePlaylist string `json:"byte_range_playlist"`
			Renditions        []struct {
				Path              string `json:"path"`
				Playlist          string `json:"playlist"`
				ByteRangePlaylist string `json:"byte_range_playlist"`
				Width             int    `json:"resolution_width"`
				Height            int    `json:"resolution_height"`
			} `json:"renditions"`
		} `json:"hls"`
		Thumbnails *struct {
			Path   string `json:"path"`
			Width  int    `json:"resolution_width"`
			Height int    `json:"resolution_height"`
		} `json:"thumbnails"`
		LatestThumbnail *struct {
			Path   string `json:"path"`
			Width  int    `json:"resolution_width"`
			Height int    `json:"resolution_height"`
		} `json:"latest_thumbnail"`
	} `json:"media"`
}

var rePrefix = regexp.MustCompile(`^ivs/v1/(\d{12})/([A-Za-z0-9]+)/(\d{4})/([1-9]\d?)/([1-9]\d?)/(\d{1,2})/(\d{1,2})/([A-Za-z0-9]{12})/`)

// recordingPrefixes returns the recording prefixes (with trailing slash) under a channel.
func recordingPrefixes(t *testing.T, keys []string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range keys {
		m := rePrefix.FindString(k)
		if m == "" {
			t.Fatalf("key %q is not in IVS's layout", k)
		}
		seen[m] = true
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// waitEventFile polls until the recording under the channel has an ended or failed event file,
// and returns the prefix and when it appeared.
func waitEventFile(t *testing.T, s3 *s3Server, bucket, channelPrefix string, prefixes int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		keys := s3.keys(t, bucket, channelPrefix)
		done := 0
		for _, k := range keys {
			if strings.HasSuffix(k, "/events/recording-ended.json") || strings.HasSuffix(k, "/events/recording-failed.json") {
				done++
			}
		}
		if done >= prefixes {
			return keys
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d recordings finished after %v; keys:\n%s", done, prefixes, within, strings.Join(keys, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readEvent(t *testing.T, s3 *s3Server, bucket, key string) eventFile {
	t.Helper()
	b, ok := s3.get(t, bucket, key)
	if !ok {
		t.Fatalf("%s missing", key)
	}
	var e eventFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v\n%s", key, err, b)
	}
	return e
}

// checkLayout verifies a finished recording holds exactly IVS's objects: the event files, the
// two multivariant playlists, per rendition the two playlists and TS files 0..n-1, and the
// thumbnails. It returns the number of TS files per rendition and of sequential thumbnails.
func checkLayout(t *testing.T, keys []string, prefix string, renditions []string, status string) (map[string]int, int) {
	t.Helper()
	want := map[string]bool{
		"events/recording-started.json":          true,
		"events/recording-" + status + ".json":   true,
		"media/hls/master.m3u8":                  true,
		"media/hls/byte-range-multivariant.m3u8": true,
	}
	ts := map[string][]int{}
	var thumbs []int
	latest := false
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rel := strings.TrimPrefix(k, prefix)
		if want[rel] {
			delete(want, rel)
			continue
		}
		if rest, ok := strings.CutPrefix(rel, "media/thumbnails/thumb"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(rest, ".jpg"))
			if err != nil || !strings.HasSuffix(rest, ".jpg") {
				t.Fatalf("unexpected thumbnail key %s", rel)
			}
			thumbs = append(thumbs, n)
			continue
		}
		if rel == "media/latest_thumbnail/thumb.jpg" {
			latest = true
			continue
		}
		parts := strings.Split(rel, "/")
		if len(parts) == 4 && parts[0] == "media" && parts[1] == "hls" && slices.Contains(renditions, parts[2]) {
			switch f := parts[3]; {
			case f == "playlist.m3u8" || f == "byte-range-variant.m3u8":
				continue
			case strings.HasSuffix(f, ".ts"):
				n, err := strconv.Atoi(strings.TrimSuffix(f, ".ts"))
				if err == nil && strconv.Itoa(n) == strings.TrimSuffix(f, ".ts") {
					ts[parts[2]] = append(ts[parts[2]], n)
					continue
				}
			}
		}
		t.Fatalf("object %s is not part of IVS's layout", k)
	}
	if len(want) > 0 {
		t.Fatalf("recording %s lacks %v", prefix, want)
	}
	if !latest {
		t.Fatalf("recording %s lacks media/latest_thumbnail/thumb.jpg", prefix)
	}
	counts := map[string]int{}
	for _, r := range renditions {
		ns := ts[r]
		sort.Ints(ns)
		for i, n := range ns {
			if n != i {
				t.Fatalf("rendition %s: TS files %v are not 0..%d", r, ns, len(ns)-1)
			}
		}
		if len(ns) == 0 {
			t.Fatalf("rendition %s has no TS file", r)
		}
		counts[r] = len(ns)
	}
	sort.Ints(thumbs)
	for i, n := range thumbs {
		if n != i {
			t.Fatalf("thumbnails %v are not thumb0..thumb%d", thumbs, len(thumbs)-1)
		}
	}
	return counts, len(thumbs)
}

// probeResult is what ffprobe says about a playlist read over HTTP.
type probeResult struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Packets []struct {
		CodecType string `json:"codec_type"`
		PTSTime   string `json:"pts_time"`
		DTSTime   string `json:"dts_time"`
		Duration  string `json:"duration_time"`
	} `json:"packets"`
}

// probePlaylist runs ffprobe on a playlist URL and checks it holds H.264 and AAC for want
// seconds (±1 s) with no gap in either: consecutive packets never more than 0.2 s apart.
func probePlaylist(t *testing.T, url string, want time.Duration) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-of", "json", "-show_streams", "-show_format",
		"-show_entries", "packet=codec_type,pts_time,dts_time,duration_time", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var p probeResult
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	codecs := map[string]bool{}
	for _, s := range p.Streams {
		codecs[s.CodecType+"/"+s.CodecName] = true
	}
	if !codecs["video/h264"] || !codecs["audio/aac"] {
		t.Fatalf("ffprobe %s: streams %+v", url, p.Streams)
	}
	for _, kind := range []string{"video", "audio"} {
		var ts []float64
		for _, pk := range p.Packets {
			if pk.CodecType != kind {
				continue
			}
			v := pk.DTSTime
			if v == "" || v == "N/A" {
				v = pk.PTSTime
			}
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				ts = append(ts, f)
			}
		}
		if len(ts) < 2 {
			t.Fatalf("ffprobe %s: %d %s packets", url, len(ts), kind)
		}
		sort.Float64s(ts)
		for i := 1; i < len(ts); i++ {
			if gap := ts[i] - ts[i-1]; gap > 0.2 {
				t.Fatalf("ffprobe %s: %s gap of %.3f s at %.3f s", url, kind, gap, ts[i-1])
			}
		}
		span := time.Duration((ts[len(ts)-1] - ts[0]) * float64(time.Second))
		if d := span - want; d > time.Second || d < -time.Second {
			t.Fatalf("ffprobe %s: %s spans %v, want %v ± 1 s", url, kind, span, want)
		}
	}
}

// checkJPEG decodes a thumbnail.
func checkJPEG(t *testing.T, b []byte, w, h int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("thumbnail is not a JPEG: %v", err)
	}
	if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("thumbnail is %dx%d, want %dx%d", img.Bounds().Dx(), img.Bounds().Dy(), w, h)
	}
}

// id3Cues returns the texts of the ID3 PES packets in a TS file, checking the PMT declares
// them as Apple's timed metadata (stream_type 0x15 with an 'ID3 ' metadata_descriptor).
func id3Cues(t *testing.T, ts []byte) []string {
	t.Helper()
	dmx := astits.NewDemuxer(t.Context(), bytes.NewReader(ts))
	id3PIDs := map[uint16]bool{}
	var texts []string
	for {
		d, err := dmx.NextData()
		if err != nil {
			break
		}
		if d.PMT != nil {
			for _, es := range d.PMT.ElementaryStreams {
				for _, ed := range es.ElementaryStreamDescriptors {
					if es.StreamType == astits.StreamTypeMetadata && ed.Tag == 0x26 {
						id3PIDs[es.ElementaryPID] = true
					}
				}
			}
		}
		if d.PES != nil && id3PIDs[d.PID] {
			text, err := metadata.ID3Text(d.PES.Data)
			if err != nil {
				t.Fatalf("ID3 PES: %v", err)
			}
			texts = append(texts, text)
		}
	}
	return texts
}

func durationOf(e eventFile) time.Duration {
	if e.Media.HLS.DurationMS == nil {
		return -1
	}
	return time.Duration(*e.Media.HLS.DurationMS) * time.Millisecond
}

func fmtKeys(keys []string) string {
	return fmt.Sprintf("%d keys:\n%s", len(keys), strings.Join(keys, "\n"))
}

// logOnFailure prints the node's log when the test fails.
func logOnFailure(t *testing.T, n *node) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("glasscast log:\n%s", n.Logs())
		}
	})
}

// recordedChannel is a serve node writing to a real S3 server, with a channel whose
// recordings go to seedBucket.
type recordedChannel struct {
	s3   *s3Server
	n    *node
	c    *ivs.Client
	ctx  context.Context
	rc   *types.RecordingConfiguration
	ch   *types.Channel
	key  string // stream key value
	chID string
}

func newRecordedChannel(t *testing.T, name string, typ types.ChannelType, interval int64, window int32, serveArgs ...string) *recordedChannel {
	t.Helper()
	r := &recordedChannel{s3: startS3(t)}
	r.s3.createBucket(t, seedBucket)
	r.n = startServe(t, "", append(append(r.s3.serveArgs(), "--ingest-reconnect-grace", "1s"), serveArgs...)...)
	logOnFailure(t, r.n)
	r.c = r.n.ivsClient()
	r.ctx = ctxT(t, 4*time.Minute)
	r.rc = recordingConfig(t, r.ctx, r.c, seedBucket, interval, window)
	r.ch, r.key = testChannel(t, r.ctx, r.c, &ivs.CreateChannelInput{Name: aws.String(name), Type: typ, InsecureIngest: true,
		RecordingConfigurationArn: r.rc.Arn})
	r.chID = (*r.ch.Arn)[strings.LastIndexByte(*r.ch.Arn, '/')+1:]
	return r
}
