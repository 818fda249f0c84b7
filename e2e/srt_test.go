package e2e

import (
	"math/rand/v2"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// srtURL is how an encoder publishes to IVS over SRT: the stream key as streamid, the
// channel's passphrase (if any) for AES. extra adds ffmpeg's srt options (latency in µs).
func srtURL(addr, streamID, passphrase string, extra ...string) string {
	q := url.Values{"streamid": {streamID}}
	if passphrase != "" {
		q.Set("passphrase", passphrase)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	// ffmpeg's srt protocol takes the streamid unescaped ("#!::r=...,m=publish" included).
	s, _ := url.QueryUnescape(q.Encode())
	return "srt://" + addr + "?" + s
}

func publishSRT(t *testing.T, u string, o pubOptions) *publisher {
	t.Helper()
	return publishAs(t, "mpegts", u, o)
}

// checkPlayback plays the channel with gohlslib for d and checks what the RTMP test checks:
// H.264 and AAC, video DTS in exact 1/30 s steps, audio spanning the video.
func checkPlayback(t *testing.T, playbackURL string, d time.Duration, minFrames int) {
	t.Helper()
	// gohlslib cannot parse a media playlist that has parts but no whole segment yet (it
	// answers EOF), which is what a stream's first two seconds look like.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, body := get(t, mediaPlaylistURL(playbackURL)); strings.Contains(body, "#EXTINF") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no whole segment in the media playlist after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := play(t, playbackURL, d)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.videoCodec != "h264" || p.audioCodec != "aac" {
		t.Fatalf("tracks: video %q audio %q", p.videoCodec, p.audioCodec)
	}
	if len(p.videoPTS) < minFrames {
		t.Fatalf("only %d video frames in %v", len(p.videoPTS), d)
	}
	// Steps of exactly 1/30 s. On a machine loaded far past its cores gohlslib now and then
	// gives a part up (6 frames): a whole number of frames is still exact timing, and the
	// server's own parts are checked frame by frame below.
	skipped := 0
	for i := 1; i < len(p.videoPTS); i++ {
		step := p.videoPTS[i] - p.videoPTS[i-1]
		if off := (step + 1500) % 3000; step < 2900 || off < 1400 || off > 1600 {
			t.Fatalf("video dts step %d ticks at frame %d, want 3000 (1/30 s)", step, i)
		}
		if step > 3100 {
			skipped++
			t.Logf("the player skipped %d frames at frame %d", step/3000-1, i)
		}
	}
	if skipped > 2 {
		t.Fatalf("the player skipped frames %d times", skipped)
	}
	checkParts(t, playbackURL)
	span := float64(p.audioPTS[len(p.audioPTS)-1]-p.audioPTS[0]) / float64(p.audioRate)
	videoSpan := float64(p.videoPTS[len(p.videoPTS)-1]-p.videoPTS[0]) / 90000
	if span < videoSpan-1 || span > videoSpan+1 {
		t.Fatalf("audio: %d frames over %.2f s, video spans %.2f s", p.audioFrames, span, videoSpan)
	}
}

// checkParts reads every part of the source rendition's playlist window and checks that its
// video samples follow each other without a gap, each 1/30 s long.
func checkParts(t *testing.T, playbackURL string) {
	t.Helper()
	_, pl := get(t, mediaPlaylistURL(playbackURL))
	base := strings.TrimSuffix(mediaPlaylistURL(playbackURL), "index.m3u8")
	var end uint64
	n := 0
	for _, l := range strings.Split(pl, "\n") {
		_, uri, ok := strings.Cut(l, `URI="part`)
		if !strings.HasPrefix(l, "#EXT-X-PART:") || !ok {
			continue
		}
		name := "part" + uri[:strings.Index(uri, `"`)]
		code, body := get(t, base+name)
		var parts fmp4.Parts
		if err := parts.Unmarshal([]byte(body)); code != 200 || err != nil {
			t.Fatalf("%s: %d %v", name, code, err)
		}
		for _, p := range parts {
			for _, tr := range p.Tracks {
				if tr.ID != 1 { // video
					continue
				}
				if end != 0 && tr.BaseTime != end {
					t.Fatalf("%s starts at %d, the part before it ended at %d", name, tr.BaseTime, end)
				}
				end = tr.BaseTime
				for _, s := range tr.Samples {
					if s.Duration != 3000 {
						t.Fatalf("%s: a video sample of %d ticks, want 3000", name, s.Duration)
					}
					end += uint64(s.Duration)
					n++
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d video frames in the playlist's parts", n)
	}
}

// TestSRTPublish: ffmpeg publishes MPEG-TS over SRT, encrypted with the channel's passphrase
// (which the real IVS client reads from the channel's srt member) and, on an insecureIngest
// channel, in the clear with the access-control streamid; gohlslib plays both. An RTMP
// publisher on a channel live over SRT is refused, and an SRT one on a channel live over
// RTMP.
func TestSRTPublish(t *testing.T) {
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(n.Logs())
		}
	})
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)

	secure, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("srt"), Type: types.ChannelTypeBasicChannelType})
	// IVS's endpoint is a host; this one listens on another port than 9000, which it adds.
	if secure.Srt == nil || aws.ToString(secure.Srt.Endpoint) != n.SRT || len(aws.ToString(secure.Srt.Passphrase)) < 10 {
		t.Fatalf("CreateChannel srt member: %+v (listener %s)", secure.Srt, n.SRT)
	}
	got, err := c.GetChannel(ctx, &ivs.GetChannelInput{Arn: secure.Arn})
	if err != nil || got.Channel.Srt == nil || aws.ToString(got.Channel.Srt.Passphrase) != aws.ToString(secure.Srt.Passphrase) {
		t.Fatalf("GetChannel srt member: %v %+v", err, got)
	}
	pass := aws.ToString(secure.Srt.Passphrase)

	pub := publishSRT(t, srtURL(n.SRT, key, pass), pubOptions{})
	st := waitLive(t, ctx, c, secure.Arn)
	if st.Health != types.StreamHealthStreamHealthy {
		t.Fatalf("GetStream: %+v", st)
	}
	waitPlayable(t, *secure.PlaybackUrl)
	checkPlayback(t, *secure.PlaybackUrl, 8*time.Second, 90)

	sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: secure.Arn})
	if err != nil {
		t.Fatal(err)
	}
	v, a := sess.StreamSession.IngestConfiguration.Video, sess.StreamSession.IngestConfiguration.Audio
	if v.VideoWidth != 1280 || v.VideoHeight != 720 || v.TargetFramerate != 30 || aws.ToString(v.AvcProfile) != "High" ||
		aws.ToString(a.Codec) != "mp4a.40.2" || a.SampleRate != 48000 {
		t.Fatalf("ingest configuration: video %+v audio %+v", v, a)
	}
	if ch := sess.StreamSession.Channel; ch.Srt == nil || ch.Srt.Passphrase != nil {
		t.Fatalf("the session's channel must not carry the SRT passphrase: %+v", ch.Srt)
	}
	// A second publisher, over RTMPS, is refused while SRT publishes; the first keeps going.
	publish(t, n.rtmpsURL(key), pubOptions{}).refused(t)
	if !strings.Contains(n.Logs(), "the channel already has a publisher") {
		t.Fatal("second publisher refusal not logged with its reason")
	}
	if strings.Contains(n.Logs(), pass) || strings.Contains(n.Logs(), key) {
		t.Fatal("an SRT passphrase or stream key reached the log")
	}
	pub.stop()
	waitOffline(t, ctx, c, secure.Arn, 10*time.Second)

	// insecureIngest: no passphrase in the channel, SRT in the clear, the access-control form.
	open, openKey := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	if open.Srt == nil || open.Srt.Endpoint == nil || open.Srt.Passphrase != nil {
		t.Fatalf("insecureIngest channel srt member: %+v", open.Srt)
	}
	rtmpPub := publish(t, n.rtmpURL(openKey), pubOptions{})
	waitLive(t, ctx, c, open.Arn)
	publishSRT(t, srtURL(n.SRT, "#!::r="+openKey+",m=publish", ""), pubOptions{}).refused(t)
	rtmpPub.stop()
	waitOffline(t, ctx, c, open.Arn, 10*time.Second)

	pub = publishSRT(t, srtURL(n.SRT, "#!::r="+openKey+",m=publish", ""), pubOptions{})
	waitLive(t, ctx, c, open.Arn)
	waitPlayable(t, *open.PlaybackUrl)
	checkPlayback(t, *open.PlaybackUrl, 4*time.Second, 45)
	pub.stop()
	waitOffline(t, ctx, c, open.Arn, 10*time.Second)
}

// TestSRTRefusals: a wrong stream key, a wrong or missing passphrase, a request to play and
// garbage datagrams are all refused, and none of it harms the ingest: a right publisher is
// accepted afterwards.
func TestSRTRefusals(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	pass := aws.ToString(ch.Srt.Passphrase)

	short := pubOptions{Duration: 10 * time.Second}
	for _, tc := range []struct{ name, url, log string }{
		{"wrong key", srtURL(n.SRT, "sk_us-east-1_wrongwrongwrongwrongwrongwrongwrong", pass), "unknown stream key"},
		{"wrong passphrase", srtURL(n.SRT, key, "not-the-passphrase-at-all"), "wrong SRT passphrase"},
		{"no passphrase", srtURL(n.SRT, key, ""), "insecureIngest is false"},
		{"play request", srtURL(n.SRT, "#!::r="+key+",m=request", pass), "takes publishers only"},
	} {
		publishSRT(t, tc.url, short).refused(t)
		if !strings.Contains(n.Logs(), tc.log) {
			t.Fatalf("%s: refusal not logged with %q", tc.name, tc.log)
		}
	}

	// Garbage: random datagrams, and SRT control headers (handshakes, shutdowns) with random
	// bodies and socket IDs, from many source ports.
	target, err := net.ResolveUDPAddr("udp", n.SRT)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		conn, err := net.DialUDP("udp", nil, target)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 100 {
			b := make([]byte, 1+rng.IntN(1500))
			for k := range b {
				b[k] = byte(rng.UintN(256))
			}
			if j%2 == 0 && len(b) >= 16 {
				b[0], b[1] = 0x80, byte(j%8) // control packet: handshake, keepalive, ACK, NAK, ..., shutdown
				if j%4 == 0 {
					clear(b[12:16]) // destination socket 0: a listener-bound handshake
				}
			}
			_, _ = conn.Write(b)
		}
		conn.Close()
	}
	select {
	case <-n.exited:
		t.Fatalf("glasscast exited after garbage datagrams:\n%s", n.Logs())
	case <-time.After(500 * time.Millisecond):
	}

	pub := publishSRT(t, srtURL(n.SRT, key, pass), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	pub.stop()
	waitOffline(t, ctx, c, ch.Arn, 10*time.Second)
}

// TestSRTLossyLink: a publisher behind a link of 250 ms round trip that loses 2 % of the
// datagrams each way (udpProxy) stays LIVE and HEALTHY, and what it sends plays without a
// missing frame: SRT's retransmission within its 2 s latency (8 round trips) recovers it.
// With 1 s (4 round trips, fewer on loaded cores where the proxy adds its own delay) one CI
// run lost a frame: a datagram whose NAK or resend was lost again and again.
func TestSRTLossyLink(t *testing.T) {
	n := startServe(t, "")
	logOnFailure(t, n) // SRT's own counts: lost, retransmitted, dropped
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	link := newUDPProxy(t, n.SRT, 125*time.Millisecond, 0.02)

	pub := publishSRT(t, srtURL(link.Addr, key, aws.ToString(ch.Srt.Passphrase), "latency", "2000000"), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	time.Sleep(5 * time.Second)
	checkPlayback(t, *ch.PlaybackUrl, 10*time.Second, 150)
	st, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: ch.Arn})
	if err != nil || st.Stream.State != types.StreamStateStreamLive || st.Stream.Health != types.StreamHealthStreamHealthy {
		t.Fatalf("stream on the lossy link: %v %+v", err, st)
	}
	if link.dropped.Load() == 0 {
		t.Fatal("the proxy dropped nothing: the link was not lossy")
	}
	t.Logf("link: %d datagrams passed, %d dropped", link.passed.Load(), link.dropped.Load())
	pub.stop()
	// libsrt sends its shutdown once and the link may drop it; then the peer idle timeout
	// (ingest.srtPeerIdleTimeout, 10 s) ends the session and the reconnect grace (5 s) the
	// stream, 15 s in all.
	waitOffline(t, ctx, c, ch.Arn, 25*time.Second)
}

// TestSRTConformance runs the LL-HLS checklist on a channel fed over SRT. A stall (D8) counts
// from when SRT's latency buffer (500 ms) has delivered what ffmpeg sent before it stopped.
func TestSRTConformance(t *testing.T) {
	runConformanceVia(t, types.ChannelTypeBasicChannelType, func(n *node, key string) stallable {
		return publishSRT(t, srtURL(n.SRT, key, ""), pubOptions{})
	}, 1500*time.Millisecond, false, "D10", "P15")
}

// TestSRTH265: H.265 in MPEG-TS over SRT passes through a BASIC channel: hvc1 in the
// multivariant playlist, and ffprobe decodes H.265 from the segments.
func TestSRTH265(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	pub := publishSRT(t, srtURL(n.SRT, key, aws.ToString(ch.Srt.Passphrase)), pubOptions{Size: "640x360", Duration: 8 * time.Second,
		Extra: []string{"-c:v", "libx265", "-x265-params", "log-level=error:bframes=0"}})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	if _, mv := get(t, *ch.PlaybackUrl); !strings.Contains(mv, `CODECS="hvc1.`) {
		t.Fatalf("multivariant does not announce H.265:\n%s", mv)
	}
	<-pub.exited
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	probe, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", mediaPlaylistURL(*ch.PlaybackUrl)).CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(probe)), "hevc,640,360") {
		t.Fatalf("ffprobe of the ended playlist: %v %s", err, probe)
	}
}
