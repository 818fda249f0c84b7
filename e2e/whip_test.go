package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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

	// The page's stop DELETEs the session: the stream ends at once.
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
	// What the browser sent: H.264, packaged as it came and described from its first SPS
	// (codec string, profile, size), and Opus (transcoded to AAC).
	if ic := ss.StreamSession.IngestConfiguration; ic == nil || ic.Video == nil || ic.Audio == nil {
		t.Errorf("ingest configuration %+v", ic)
	} else if v := ic.Video; len(aws.ToString(v.Codec)) != len("avc1.42C01F") || !strings.HasPrefix(aws.ToString(v.Codec), "avc1.") ||
		aws.ToString(v.Profile) == "" || v.VideoWidth == 0 || v.VideoHeight == 0 || aws.ToString(ic.Audio.Codec) != "opus" {
		t.Errorf("ingest configuration: video codec %q profile %q %dx%d, audio %q",
			aws.ToString(v.Codec), aws.ToString(v.Profile), v.VideoWidth, v.VideoHeight, aws.ToString(ic.Audio.Codec))
	}

	// The shared session measured the WHIP input: IngestVideoBitrate has datapoints.
	_, v := metricValues(t, ctx, n, "IngestVideoBitrate", 10, "Maximum", start.Add(-time.Minute).Truncate(10*time.Second), time.Now().Add(10*time.Second),
		"Channel", chID, "Track", "Track0")
	if len(v) == 0 || slices.Max(v) < 50_000 {
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
	if status, _, _ := offerWHIP(t, ctx, n.endpoint()+"/whip", key, offer.SDP); status != http.StatusConflict {
		t.Fatalf("WHIP offer while RTMP is live: %d, want 409", status)
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

// TestWHIPVP8: Chromium publishes its fake camera over WHIP with VP8 forced
// (setCodecPreferences) on a BASIC channel: the channel plays H.264 + AAC (the multivariant
// says avc1 and mp4a, gohlslib plays both, ffprobe decodes a whole segment's frames), and the
// DELETE ends the stream at once although the reconnect grace is a minute.
func TestWHIPVP8(t *testing.T) {
	whipTranscoded(t, "video/VP8", types.ChannelTypeBasicChannelType)
}

// TestWHIPVP9: the same with VP9 on a STANDARD channel, whose ladder transcodes the
// H.264 that the VP9 became: every rendition is H.264.
func TestWHIPVP9(t *testing.T) {
	whipTranscoded(t, "video/VP9", types.ChannelTypeStandardChannelType)
}

func whipTranscoded(t *testing.T, mime string, chType types.ChannelType) {
	needBrowser(t)
	start := time.Now()
	n := startServe(t, "", "--ingest-reconnect-grace", "60s")
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("whipvpx"), Type: chType, InsecureIngest: true})

	b := startWHIPBrowser(t, n, key, mime, "640x360")
	b.onSample = func(s whipCodecSample) {
		if s.Codec != nil && !strings.EqualFold(*s.Codec, mime) {
			t.Errorf("Chromium sends %s, want %s", *s.Codec, mime)
		}
	}
	var live whipAttempt
	_ = json.Unmarshal(b.next("live"), &live)
	if live.Status != http.StatusCreated {
		t.Fatalf("WHIP offer: %+v\n%s", live, n.Logs())
	}
	waitLive(t, ctx, c, ch.Arn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, body := get(t, mediaPlaylistURL(*ch.PlaybackUrl)); strings.Count(body, "#EXTINF") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two whole segments in the media playlist after 20 s\n%s", n.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Every variant is H.264 + AAC.
	_, mv := get(t, *ch.PlaybackUrl)
	variants := regexp.MustCompile(`CODECS="([^"]*)"`).FindAllStringSubmatch(mv, -1)
	if len(variants) == 0 || (chType == types.ChannelTypeStandardChannelType && len(variants) < 2) {
		t.Fatalf("multivariant playlist:\n%s", mv)
	}
	for _, v := range variants {
		if !strings.Contains(v[1], "avc1.") || !strings.Contains(v[1], "mp4a.") {
			t.Fatalf("a variant with CODECS %q, want avc1 and mp4a:\n%s", v[1], mv)
		}
	}
	p := play(t, *ch.PlaybackUrl, 5*time.Second)
	p.mu.Lock()
	if p.videoCodec != "h264" || p.audioCodec != "aac" || len(p.videoPTS) < 30 || p.audioFrames < 50 {
		t.Fatalf("gohlslib played video %q (%d frames), audio %q (%d frames)", p.videoCodec, len(p.videoPTS), p.audioCodec, p.audioFrames)
	}
	t.Logf("gohlslib: %d H.264 frames, %d AAC frames in 5 s", len(p.videoPTS), p.audioFrames)
	p.mu.Unlock()
	probeSegment(t, mediaPlaylistURL(*ch.PlaybackUrl))

	// DELETE ends the stream at once, well within the minute of reconnect grace.
	b.stop()
	var deleted struct{ Status int }
	_ = json.Unmarshal(b.next("deleted"), &deleted)
	deletedAt := time.Now()
	if deleted.Status != http.StatusOK {
		t.Fatalf("DELETE: %d", deleted.Status)
	}
	waitOffline(t, ctx, c, ch.Arn, 10*time.Second)
	t.Logf("offline %v after the DELETE", time.Since(deletedAt).Round(10*time.Millisecond))
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
	// The publisher's codec, not the H.264 the ingest made of it, and its picture size.
	if ic := ss.StreamSession.IngestConfiguration; ic == nil || ic.Video == nil || aws.ToString(ic.Video.Codec) != strings.ToLower(strings.TrimPrefix(mime, "video/")) ||
		ic.Video.VideoWidth == 0 || ic.Video.VideoHeight == 0 {
		t.Errorf("ingest configuration %+v", ic)
	}
	t.Logf("whole test %v", time.Since(start).Round(time.Second))
}

// whipBrowser is Chromium publishing over WHIP with one video codec forced (whip_codec.mjs).
type whipBrowser struct {
	t        *testing.T
	n        *node
	stdin    io.Writer
	lines    chan map[string]json.RawMessage
	onSample func(whipCodecSample)
}

type whipCodecSample struct {
	Codec         *string
	Width, Height int
	FPS           float64
}

func startWHIPBrowser(t *testing.T, n *node, key, mime, size string) *whipBrowser {
	t.Helper()
	cmd := exec.Command("node", "whip_codec.mjs", n.endpoint()+"/player/go-live", n.endpoint()+"/whip", key, mime, size)
	cmd.Dir = browserDir
	cmd.Stderr = &prefixWriter{t: t, prefix: "whip_codec.mjs: "}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	b := &whipBrowser{t: t, n: n, stdin: stdin, lines: make(chan map[string]json.RawMessage, 100)}
	go func() {
		defer close(b.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				b.lines <- m
			}
		}
	}()
	return b
}

// next returns the script's next line of that key, handing samples to onSample meanwhile.
func (b *whipBrowser) next(key string) json.RawMessage {
	b.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-b.lines:
			if !ok {
				b.t.Fatalf("the browser script ended before %q\n%s", key, b.n.Logs())
			}
			if m[key] != nil {
				return m[key]
			}
			if m["sample"] != nil && b.onSample != nil {
				var s whipCodecSample
				_ = json.Unmarshal(m["sample"], &s)
				b.onSample(s)
			}
		case <-timeout:
			b.t.Fatalf("no %q from the browser script in 30 s", key)
		}
	}
}

// poll hands the samples printed so far to onSample.
func (b *whipBrowser) poll() {
	for {
		select {
		case m, ok := <-b.lines:
			if !ok {
				return
			}
			if m["sample"] != nil && b.onSample != nil {
				var s whipCodecSample
				_ = json.Unmarshal(m["sample"], &s)
				b.onSample(s)
			}
		default:
			return
		}
	}
}

// stop has the script DELETE its session.
func (b *whipBrowser) stop() { _, _ = io.WriteString(b.stdin, "stop\n") }

// stall has the browser stop sending media (its senders' tracks replaced by none) while the
// peer connection stays up; resume restores the tracks.
func (b *whipBrowser) stall() error  { return b.command("pause") }
func (b *whipBrowser) resume() error { return b.command("resume") }

func (b *whipBrowser) command(cmd string) error {
	if _, err := io.WriteString(b.stdin, cmd+"\n"); err != nil {
		return err
	}
	b.next(cmd + "d")
	return nil
}

// probeSegment has ffprobe decode every frame of the media playlist's last whole segment of
// at least a second (its init section and the segment, as a player appends them): H.264 and
// AAC, every packet of each decoded into a frame. A shorter one is passed over: when Chromium
// changes its picture size under load, the segment before the new init section ends there and
// can hold a single frame (seen in CI: 0.049 s, one frame).
func probeSegment(t *testing.T, playlistURL string) {
	t.Helper()
	_, pl := get(t, playlistURL)
	base := playlistURL[:strings.LastIndexByte(playlistURL, '/')+1]
	inits := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindAllStringSubmatchIndex(pl, -1)
	segs := regexp.MustCompile(`#EXTINF:([0-9.]+)[^\n]*\n(?:#[^\n]*\n)*([^#\n][^\n]*)`).FindAllStringSubmatchIndex(pl, -1)
	var seg []int
	for _, m := range segs {
		if d, _ := strconv.ParseFloat(pl[m[2]:m[3]], 64); d >= 1 {
			seg = m // [0] where it starts, [4]:[5] its URI
		}
	}
	if len(inits) == 0 || seg == nil {
		t.Fatalf("no init section or whole segment of a second in\n%s", pl)
	}
	init := ""
	for _, m := range inits { // the init section that the segment follows
		if m[0] < seg[0] {
			init = pl[m[2]:m[3]]
		}
	}
	segName := pl[seg[4]:seg[5]]
	var file []byte
	for _, u := range []string{init, segName} {
		code, body := get(t, base+u)
		if code != 200 {
			t.Fatalf("%s: %d", u, code)
		}
		file = append(file, body...)
	}
	path := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-count_packets", "-of", "json",
		"-show_entries", "stream=codec_type,codec_name,nb_read_frames,nb_read_packets", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var r struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Frames    string `json:"nb_read_frames"`
			Packets   string `json:"nb_read_packets"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for _, s := range r.Streams {
		f, _ := strconv.Atoi(s.Frames)
		p, _ := strconv.Atoi(s.Packets)
		got[s.CodecType+"/"+s.CodecName] = [2]int{f, p}
	}
	for _, k := range []string{"video/h264", "audio/aac"} {
		// A decoder holds no frame back at the end: every packet is a decoded frame.
		if fp := got[k]; fp[0] < 5 || fp[0] != fp[1] {
			t.Fatalf("ffprobe decoded %v (frames, packets) in segment %s, want H.264 and AAC, every packet decoded\n%s", got, segName, pl)
		}
	}
	t.Logf("ffprobe decoded %v (frames, packets) in segment %s", got, segName)
}

// TestWHIPTranscodeFigures measures the CPU of the ffmpeg that transcodes a WHIP publisher's
// VP8 or VP9 to H.264 (from /proc, the ffmpeg child reading IVF), for Chromium's fake camera
// at 1280x720, 30 fps requested, over 20 s, three rounds each. A measurement, run on demand:
//
//	GLASSCAST_FIGURES=1 go test -count=1 -run TestWHIPTranscodeFigures -v ./e2e/
func TestWHIPTranscodeFigures(t *testing.T) {
	if os.Getenv("GLASSCAST_FIGURES") == "" {
		t.Skip("a measurement: set GLASSCAST_FIGURES=1 to run it")
	}
	needBrowser(t)
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	c := n.ivsClient()
	ctx := ctxT(t, 8*time.Minute)
	for _, mime := range []string{"video/VP8", "video/VP9"} {
		for round := 1; round <= 3; round++ {
			ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("fig"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
			b := startWHIPBrowser(t, n, key, mime, "1280x720")
			var last whipCodecSample
			b.onSample = func(s whipCodecSample) { last = s }
			var live whipAttempt
			_ = json.Unmarshal(b.next("live"), &live)
			if live.Status != http.StatusCreated {
				t.Fatalf("WHIP offer: %+v", live)
			}
			waitPlayable(t, *ch.PlaybackUrl)
			// Chromium starts small and steps its resolution up as its bandwidth estimate grows;
			// each step up is a new transcoder run. Measure once it sends 720p.
			for deadline := time.Now().Add(20 * time.Second); last.Width < 1280 && time.Now().Before(deadline); {
				b.poll()
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(2 * time.Second)
			// Every 250 ms, the CPU time of each transcoder run (a run that ends mid-way loses
			// at most its last 250 ms).
			first, seen, sizes := map[int]time.Duration{}, map[int]time.Duration{}, map[string]bool{}
			wall0 := time.Now()
			for i := 0; time.Since(wall0) < 20*time.Second; i++ {
				for pid, ts := range transcoders(n) {
					if _, ok := first[pid]; !ok {
						first[pid] = ts.cpu
						if i > 0 {
							first[pid] = 0 // started during the measurement
						}
					}
					seen[pid] = ts.cpu
					sizes[ts.scale] = true
				}
				time.Sleep(250 * time.Millisecond)
			}
			var used time.Duration
			for pid, cpu := range seen {
				used += cpu - first[pid]
			}
			share := used.Seconds() / time.Since(wall0).Seconds()
			scale := strings.Join(slices.Sorted(maps.Keys(sizes)), " ")
			b.poll()
			b.stop()
			_ = b.next("deleted")
			t.Logf("%s round %d: transcoding ffmpeg (%d runs, output %s) %.0f %% of a core; Chromium sent %dx%d at %.0f fps",
				mime, round, len(seen), scale, 100*share, last.Width, last.Height, last.FPS)
			waitOffline(t, ctx, c, ch.Arn, 10*time.Second)
		}
	}
}

type transcoderRun struct {
	cpu   time.Duration // utime + stime
	scale string        // output size
}

// transcoders are serve's ffmpeg children that read IVF (VP8/VP9 transcoder runs).
func transcoders(n *node) map[int]transcoderRun {
	parent := strconv.Itoa(n.cmd.Process.Pid)
	runs := map[int]transcoderRun{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile("/proc/" + d.Name() + "/stat")
		cmdline, err2 := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err1 != nil || err2 != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		if len(f) < 13 || f[1] != parent || !strings.Contains(string(cmdline), "ivf\x00") {
			continue
		}
		_, scale, _ := strings.Cut(string(cmdline), "scale=")
		scale, _, _ = strings.Cut(scale, "\x00")
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		runs[pid] = transcoderRun{cpu: time.Duration(u+s) * time.Second / 100, scale: scale} // USER_HZ
	}
	return runs
}
