package e2e

import (
	"context"
	"io"
	"math/rand"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// played is what an HLS client received.
type played struct {
	mu          sync.Mutex
	videoPTS    []int64 // 90 kHz
	audioPTS    []int64 // in the audio clock rate
	audioRate   int
	videoCodec  string
	audioCodec  string
	audioFrames int
}

// play reads url with gohlslib's client for d.
func play(t *testing.T, url string, d time.Duration) *played {
	t.Helper()
	p := &played{}
	c := &gohlslib.Client{URI: url}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				p.videoCodec = "h264"
				c.OnDataH26x(tr, func(pts, dts int64, au [][]byte) {
					p.mu.Lock()
					p.videoPTS = append(p.videoPTS, dts)
					p.mu.Unlock()
				})
			case *codecs.MPEG4Audio:
				p.audioCodec = "aac"
				p.audioRate = tr.ClockRate
				c.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) {
					p.mu.Lock()
					p.audioPTS = append(p.audioPTS, pts)
					p.audioFrames += len(aus)
					p.mu.Unlock()
				})
			}
		}
		return nil
	}
	runFor(t, c, d)
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitPlayable polls a playback URL until it answers 200: a channel is LIVE from the moment its
// publisher is accepted, playable once the first part is packaged.
func waitPlayable(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := get(t, url); code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not playable after 15 s", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mediaPlaylistURL(playbackURL string) string {
	return strings.TrimSuffix(playbackURL, ".m3u8") + "/source/index.m3u8"
}

// TestLiveVideo publishes the seed tutorial's ffmpeg test pattern over RTMP and plays it with
// gohlslib's client through `serve`, checking what the control API says along the way.
func TestLiveVideo(t *testing.T) {
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("live"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})

	if code, _ := get(t, *ch.PlaybackUrl); code != 404 {
		t.Fatalf("offline channel playlist: %d, want 404", code)
	}
	pub := publish(t, n.rtmpURL(key), pubOptions{})
	st := waitLive(t, ctx, c, ch.Arn)
	if !regexp.MustCompile(`^st-[a-zA-Z0-9]{23}$`).MatchString(*st.StreamId) || st.Health != types.StreamHealthStreamHealthy ||
		time.Since(*st.StartTime) > time.Minute || *st.PlaybackUrl != *ch.PlaybackUrl {
		t.Fatalf("GetStream: %+v", st)
	}
	ls, err := c.ListStreams(ctx, &ivs.ListStreamsInput{})
	if err != nil || len(ls.Streams) != 1 || *ls.Streams[0].StreamId != *st.StreamId {
		t.Fatalf("ListStreams: %v %+v", err, ls)
	}

	waitPlayable(t, *ch.PlaybackUrl)
	p := play(t, *ch.PlaybackUrl, 8*time.Second)
	p.mu.Lock()
	if p.videoCodec != "h264" || p.audioCodec != "aac" {
		t.Fatalf("tracks: video %q audio %q", p.videoCodec, p.audioCodec)
	}
	// About 8 s of 30 fps minus start-up; timestamps strictly increasing in 1/30 s steps.
	if len(p.videoPTS) < 90 {
		t.Fatalf("only %d video frames in 8 s", len(p.videoPTS))
	}
	for i := 1; i < len(p.videoPTS); i++ {
		if d := p.videoPTS[i] - p.videoPTS[i-1]; d < 2900 || d > 3100 {
			t.Fatalf("video dts step %d ticks at frame %d, want 3000 (1/30 s)", d, i)
		}
	}
	// AAC frames are 1024 samples; the client groups them per PES/sample run.
	span := float64(p.audioPTS[len(p.audioPTS)-1]-p.audioPTS[0]) / float64(p.audioRate)
	videoSpan := float64(p.videoPTS[len(p.videoPTS)-1]-p.videoPTS[0]) / 90000
	if p.audioFrames < 100 || span < videoSpan-1 || span > videoSpan+1 {
		t.Fatalf("audio: %d frames over %.2f s, video spans %.2f s", p.audioFrames, span, videoSpan)
	}
	p.mu.Unlock()

	sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn})
	if err != nil {
		t.Fatal(err)
	}
	ss := sess.StreamSession
	v, a := ss.IngestConfiguration.Video, ss.IngestConfiguration.Audio
	if *ss.StreamId != *st.StreamId || v.VideoWidth != 1280 || v.VideoHeight != 720 || v.TargetFramerate != 30 ||
		!strings.HasPrefix(*v.Codec, "avc1.") || *v.AvcProfile != "High" || *a.Codec != "mp4a.40.2" || a.SampleRate != 48000 || a.Channels != 1 {
		t.Fatalf("ingest configuration: video %+v audio %+v", v, a)
	}
	if !hasEvent(ss.TruncatedEvents, "Session Created") || !hasEvent(ss.TruncatedEvents, "Stream Start") || ss.EndTime != nil {
		t.Fatalf("session events while live: %+v", ss.TruncatedEvents)
	}

	// A second publisher on a live channel is refused; the first one keeps going.
	publish(t, n.rtmpURL(key), pubOptions{}).refused(t)
	if !strings.Contains(n.Logs(), "the channel already has a publisher") {
		t.Fatal("second publisher refusal not logged with its reason")
	}
	_, err = c.DeleteChannel(ctx, &ivs.DeleteChannelInput{Arn: ch.Arn})
	wantCode(t, err, "ConflictException")
	_, err = c.UpdateChannel(ctx, &ivs.UpdateChannelInput{Arn: ch.Arn, Name: aws.String("x")})
	wantCode(t, err, "ConflictException")

	pub.stop()
	waitOffline(t, ctx, c, ch.Arn, 10*time.Second)
	code, body := get(t, mediaPlaylistURL(*ch.PlaybackUrl))
	if code != 200 || !strings.Contains(body, "#EXT-X-ENDLIST") || strings.Contains(body, "PRELOAD-HINT") {
		t.Fatalf("ended playlist: %d\n%s", code, body)
	}
	sess, err = c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn, StreamId: st.StreamId})
	if err != nil || sess.StreamSession.EndTime == nil || !hasEvent(sess.StreamSession.TruncatedEvents, "Stream End") {
		t.Fatalf("ended session: %v %+v", err, sess)
	}
	if ev := sess.StreamSession.TruncatedEvents; *ev[0].Name != "Session Ended" {
		t.Fatalf("truncatedEvents must be newest first, got %s first", *ev[0].Name)
	}
	lss, err := c.ListStreamSessions(ctx, &ivs.ListStreamSessionsInput{ChannelArn: ch.Arn})
	if err != nil || len(lss.StreamSessions) != 1 || lss.StreamSessions[0].EndTime == nil {
		t.Fatalf("ListStreamSessions: %v %+v", err, lss)
	}
}

// waitSessionEvents polls GetStreamSession until the session lists every one of names, and
// returns how long that took. Recording End comes once the recording's last objects are in
// the bucket, which can be after the channel is offline and the session has ended, as in IVS.
func waitSessionEvents(t *testing.T, ctx context.Context, c *ivs.Client, arn, streamID *string, within time.Duration, names ...string) (*types.StreamSession, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		out, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: arn, StreamId: streamID})
		if err == nil && !slices.ContainsFunc(names, func(n string) bool { return !hasEvent(out.StreamSession.TruncatedEvents, n) }) {
			return out.StreamSession, time.Since(start)
		}
		if time.Since(start) > within {
			if err != nil {
				t.Fatalf("GetStreamSession: %v", err)
			}
			t.Fatalf("session events %v still lack one of %q %v later", eventNames(out.StreamSession.TruncatedEvents), names, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func hasEvent(evs []types.StreamEvent, name string) bool {
	for _, e := range evs {
		if e.Name != nil && *e.Name == name {
			return true
		}
	}
	return false
}

// TestIngestRefusals: wrong key, deleted channel, plain RTMP on a secure-only channel are
// refused; RTMPS with the self-signed certificate works.
func TestIngestRefusals(t *testing.T) {
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)

	publish(t, n.rtmpURL("sk_us-east-1_wrongwrongwrongwrongwrongwrongwrong"), pubOptions{}).refused(t)

	secure, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("secure"), Type: types.ChannelTypeBasicChannelType})
	publish(t, n.rtmpURL(key), pubOptions{}).refused(t)
	if !strings.Contains(n.Logs(), "accepts RTMPS only") {
		t.Fatal("plain-RTMP refusal not logged with its reason")
	}
	if strings.Contains(n.Logs(), key) {
		t.Fatal("a stream key value reached the log")
	}
	pub := publish(t, n.rtmpsURL(key), pubOptions{})
	waitLive(t, ctx, c, secure.Arn)
	waitPlayable(t, mediaPlaylistURL(*secure.PlaybackUrl))
	if code, body := get(t, mediaPlaylistURL(*secure.PlaybackUrl)); code != 200 || !strings.Contains(body, "#EXT-X-PART:") {
		t.Fatalf("RTMPS stream playlist: %d\n%s", code, body)
	}
	pub.stop()
	waitOffline(t, ctx, c, secure.Arn, 10*time.Second)

	gone, goneKey := testChannel(t, ctx, c, &ivs.CreateChannelInput{InsecureIngest: true})
	if _, err := c.DeleteChannel(ctx, &ivs.DeleteChannelInput{Arn: gone.Arn}); err != nil {
		t.Fatal(err)
	}
	publish(t, n.rtmpURL(goneKey), pubOptions{}).refused(t)
}

// TestReconnectAndStop: a publisher that comes back within the grace window continues the
// same session and playlist; StopStream disconnects it and ends the stream at once.
func TestReconnectAndStop(t *testing.T) {
	n := startServe(t, "", "--ingest-reconnect-grace", "4s")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	pub := publish(t, n.rtmpURL(key), pubOptions{})
	first := waitLive(t, ctx, c, ch.Arn)
	time.Sleep(4 * time.Second)
	pub.stop()
	time.Sleep(time.Second)
	pub = publish(t, n.rtmpURL(key), pubOptions{})
	time.Sleep(6 * time.Second)
	again := waitLive(t, ctx, c, ch.Arn)
	if *again.StreamId != *first.StreamId {
		t.Fatalf("reconnect within grace started a new session %s (was %s)", *again.StreamId, *first.StreamId)
	}
	code, body := get(t, mediaPlaylistURL(*ch.PlaybackUrl))
	if code != 200 || !strings.Contains(body, "#EXT-X-DISCONTINUITY") || strings.Contains(body, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist after reconnect: %d\n%s", code, body)
	}
	if _, err := c.StopStream(ctx, &ivs.StopStreamInput{ChannelArn: ch.Arn}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pub.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("StopStream did not disconnect the publisher")
	}
	waitOffline(t, ctx, c, ch.Arn, 3*time.Second)
	_, err := c.StopStream(ctx, &ivs.StopStreamInput{ChannelArn: ch.Arn})
	wantCode(t, err, "ChannelNotBroadcasting")
	lss, err := c.ListStreamSessions(ctx, &ivs.ListStreamSessionsInput{ChannelArn: ch.Arn})
	if err != nil || len(lss.StreamSessions) != 1 {
		t.Fatalf("one session expected after a reconnect: %v %+v", err, lss)
	}
}

// TestRTMPGarbage throws random bytes, truncated handshakes and idle connections at both
// ingest listeners; the process must survive and still accept a real publisher.
func TestRTMPGarbage(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	rng := rand.New(rand.NewSource(1))
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		addr := n.RTMP
		if i%2 == 1 {
			addr = n.RTMPS
		}
		buf := make([]byte, rng.Intn(8192))
		rng.Read(buf)
		if i%3 == 0 && len(buf) > 0 {
			buf[0] = 3 // a valid RTMP version byte, so the handshake goes further
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			_, _ = conn.Write(buf)
			_, _ = io.Copy(io.Discard, conn)
		}()
	}
	wg.Wait()
	if code, _ := get(t, "http://"+n.HTTP+"/healthz"); code != 200 {
		t.Fatal("server unhealthy after garbage")
	}
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	publish(t, n.rtmpsURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
}

// runFor starts the client c and runs it for d, failing the test if it stops before.
func runFor(t *testing.T, c *gohlslib.Client, d time.Duration) {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("hls client: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Wait2() }()
	select {
	case err := <-errc:
		t.Fatalf("hls client stopped: %v", err)
	case <-time.After(d):
	}
	c.Close()
}
