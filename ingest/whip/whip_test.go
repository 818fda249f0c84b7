package whip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	rtpcodecs "github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"glasscast/metrics"
)

// fakeIngest records what a WHIP publisher sends.
type fakeIngest struct {
	mu       sync.Mutex
	key      string
	sessions []*fakeSession
}

func (f *fakeIngest) Authorize(key string, secure bool) error {
	if key != f.key {
		return ErrForbidden
	}
	return nil
}

func (f *fakeIngest) Attach(ctx context.Context, key string, secure bool, close func(), log *slog.Logger) (Session, error) {
	if key != f.key {
		return nil, ErrForbidden
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if !s.detached() {
			return nil, ErrConflict
		}
	}
	s := &fakeSession{}
	f.sessions = append(f.sessions, s)
	return s, nil
}

type fakeSession struct {
	mu           sync.Mutex
	video, audio mp4codecs.Codec
	sentVideo    string // what Start was told the publisher sends
	sentAudio    string
	videoDTS     []time.Duration
	keys         []bool
	audioPTS     []time.Duration
	detachErr    error
	isDetached   bool
	lastSPS      [][]byte
	steps        []step // ExpectKeyFrame and WriteH264 calls, in order
}

func (s *fakeSession) StreamID() string  { return "st-test" }
func (s *fakeSession) ChannelID() string { return "ch-test" }
func (s *fakeSession) Start(ctx context.Context, v, a mp4codecs.Codec, sentVideo, sentAudio string) error {
	s.mu.Lock()
	s.video, s.audio, s.sentVideo, s.sentAudio = v, a, sentVideo, sentAudio
	s.mu.Unlock()
	return nil
}

func (s *fakeSession) WriteH264(ctx context.Context, pts, dts time.Duration, au [][]byte) error {
	s.mu.Lock()
	s.videoDTS = append(s.videoDTS, dts)
	s.keys = append(s.keys, h264.IsRandomAccess(au))
	for _, nalu := range au {
		if len(nalu) > 0 && h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeSPS {
			s.lastSPS = [][]byte{nalu}
		}
	}
	s.steps = append(s.steps, step{at: time.Now()})
	s.mu.Unlock()
	return nil
}

func (s *fakeSession) WriteMPEG4Audio(ctx context.Context, pts time.Duration, au []byte) error {
	s.mu.Lock()
	s.audioPTS = append(s.audioPTS, pts)
	s.mu.Unlock()
	return nil
}

// step is a call to ExpectKeyFrame (told) or WriteH264, and when it was made.
type step struct {
	told bool
	at   time.Time
}

func (s *fakeSession) ExpectKeyFrame() {
	s.mu.Lock()
	s.steps = append(s.steps, step{told: true, at: time.Now()})
	s.mu.Unlock()
}
func (s *fakeSession) Meter() metrics.IngestMeter { return metrics.NopIngest{}.Open("", "", "") }
func (s *fakeSession) Detach(ctx context.Context, err error) {
	s.mu.Lock()
	s.isDetached, s.detachErr = true, err
	s.mu.Unlock()
}

func (s *fakeSession) detached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isDetached
}

// media makes a short H.264 (baseline, a key frame a second) and Ogg Opus file with ffmpeg.
func testMedia(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	v, a := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "4",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-bf", "0", "-g", "25", "-bsf:v", "h264_mp4toannexb", "-f", "h264", v).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg video: %v %s", err, out)
	}
	out, err = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
		"-c:a", "libopus", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", a).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg audio: %v %s", err, out)
	}
	return v, a
}

// publishWHIP offers with a pion client and sends the files in real time; it returns the
// answer's status and Location.
func publishWHIP(t *testing.T, endpoint, key, videoFile, audioFile string, ctx context.Context) (int, string, *webrtc.PeerConnection) {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	vt, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "glass")
	at, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "glass")
	for _, tr := range []webrtc.TrackLocal{vt, at} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	code, loc := signalWHIP(t, pc, endpoint, key)
	if code != http.StatusCreated {
		return code, "", nil
	}
	go sendH264(ctx, videoFile, func(_ int, au []byte) {
		_ = vt.WriteSample(media.Sample{Data: au, Duration: 40 * time.Millisecond})
	})
	go func() {
		f, _ := os.Open(audioFile)
		defer f.Close()
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			page, _, err := r.ParseNextPage()
			if err != nil {
				return
			}
			if bytes.HasPrefix(page, []byte("OpusTags")) {
				continue
			}
			_ = at.WriteSample(media.Sample{Data: page, Duration: 20 * time.Millisecond})
			<-tick.C
		}
	}()
	return code, loc, pc
}

// sendH264 sends the access units of an Annex-B H.264 file, one every 40 ms, numbered from 0,
// until the file or ctx ends.
func sendH264(ctx context.Context, file string, send func(frame int, au []byte)) {
	data, _ := os.ReadFile(file)
	r, _ := h264reader.NewReader(bytes.NewReader(data))
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	var pending []byte
	for frame := 0; ctx.Err() == nil; {
		nal, err := r.NextNAL()
		if err != nil {
			return
		}
		pending = append(pending, append([]byte{0, 0, 0, 1}, nal.Data...)...)
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr {
			continue
		}
		send(frame, pending)
		pending = nil
		frame++
		<-tick.C
	}
}

// onConnected returns a channel closed once pc is connected.
func onConnected(pc *webrtc.PeerConnection) <-chan struct{} {
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	return connected
}

// signalWHIP offers pc's tracks to endpoint with key and applies the answer; it returns the
// status and Location, and closes pc when the offer is refused.
func signalWHIP(t *testing.T, pc *webrtc.PeerConnection, endpoint, key string) (int, string) {
	t.Helper()
	offer, _ := pc.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(offer)
	<-gathered
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		pc.Close()
		return resp.StatusCode, ""
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestWHIPPublish: a pion WHIP client publishes H.264 and Opus; the session gets H.264
// access units from a key frame on, with 40 ms steps, and AAC frames from ffmpeg, in step
// with the video; a wrong key gets 403, a second publisher 409, no key 401; DELETE detaches
// the session as an explicit end (ErrDeleted).
func TestWHIPPublish(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed")
	}
	vf, af := testMedia(t)
	ing := &fakeIngest{key: "sk_good"}
	s, _ := startServer(t, Config{UDPListen: "127.0.0.1:0", TCPListen: "127.0.0.1:0", Timeout: 3 * time.Second}, ing, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	mux := http.NewServeMux()
	mux.Handle("/whip", s)
	mux.Handle("/whip/", s)
	hs := httptest.NewServer(mux)
	defer hs.Close()

	pctx, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	if code, _, _ := publishWHIP(t, hs.URL+"/whip", "sk_bad", vf, af, pctx); code != http.StatusForbidden {
		t.Fatalf("wrong key: status %d, want 403", code)
	}
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/whip", strings.NewReader("v=0"))
	req.Header.Set("Content-Type", "application/sdp")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %v %v, want 401", resp.StatusCode, err)
	}
	code, loc, pc := publishWHIP(t, hs.URL+"/whip", "sk_good", vf, af, pctx)
	if code != http.StatusCreated || !strings.HasPrefix(loc, "/whip/session/") {
		t.Fatalf("publish: status %d location %q", code, loc)
	}
	defer pc.Close()
	if code, _, _ := publishWHIP(t, hs.URL+"/whip", "sk_good", vf, af, pctx); code != http.StatusConflict {
		t.Fatalf("second publisher: status %d, want 409", code)
	}
	time.Sleep(3 * time.Second)
	req, _ = http.NewRequest(http.MethodDelete, hs.URL+loc, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v", resp.StatusCode, err)
	}
	sess := ing.sessions[0]
	deadline := time.Now().Add(5 * time.Second)
	for !sess.detached() {
		if time.Now().After(deadline) {
			t.Fatal("DELETE did not detach the session")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !errors.Is(sess.detachErr, ErrDeleted) {
		t.Errorf("DELETE detached with %v, want ErrDeleted (the stream ends at once)", sess.detachErr)
	}
	if _, ok := sess.video.(*mp4codecs.H264); !ok {
		t.Fatalf("video codec %T", sess.video)
	}
	if _, ok := sess.audio.(*mp4codecs.MPEG4Audio); !ok {
		t.Fatalf("audio codec %T", sess.audio)
	}
	if sess.sentVideo != "" || sess.sentAudio != "opus" {
		t.Fatalf("Start was told the publisher sends video %q audio %q, want H.264 passed through and opus", sess.sentVideo, sess.sentAudio)
	}
	if len(sess.videoDTS) < 40 || !sess.keys[0] {
		t.Fatalf("%d video frames, first key %v", len(sess.videoDTS), len(sess.keys) > 0 && sess.keys[0])
	}
	for i := 1; i < len(sess.videoDTS); i++ {
		if d := sess.videoDTS[i] - sess.videoDTS[i-1]; d != 40*time.Millisecond {
			t.Fatalf("video step %d: %v, want 40ms", i, d)
		}
	}
	if len(sess.audioPTS) < 80 {
		t.Fatalf("%d AAC frames in ~3 s, want ~140", len(sess.audioPTS))
	}
	for i := 1; i < len(sess.audioPTS); i++ {
		if d := sess.audioPTS[i] - sess.audioPTS[i-1]; d < 21*time.Millisecond || d > 22*time.Millisecond {
			t.Fatalf("AAC step %d: %v, want 1024/48000 s", i, d)
		}
	}
	// The last frames of both were sent at the same instant; the audio that ffmpeg still held
	// when DELETE stopped it (more on loaded cores) is lost.
	lastV, lastA := sess.videoDTS[len(sess.videoDTS)-1], sess.audioPTS[len(sess.audioPTS)-1]
	if d := lastA - lastV; d < -time.Second || d > 300*time.Millisecond {
		t.Errorf("the last AAC frame is at %v, the last video frame at %v", lastA, lastV)
	}
	t.Logf("%d video frames, %d AAC frames; last at %v and %v", len(sess.videoDTS), len(sess.audioPTS), lastV, lastA)
}

// TestLossReleasesForetell: a key frame request waiting for the next video frame to be
// written (foretellKey) goes out as soon as a loss stops the frames (stopPassing), rather than
// after maxKeyForetell: no frame comes until the key frame it asks for.
func TestLossReleasesForetell(t *testing.T) {
	p := &publisher{keyTold: make(chan struct{}, 1), ctx: context.Background()}
	p.passing.Store(true)
	done := make(chan time.Time)
	go func() { p.foretellKey(); done <- time.Now() }()
	for !p.keyAsked.Load() {
		time.Sleep(time.Millisecond)
	}
	lost := time.Now()
	p.stopPassing()
	select {
	case at := <-done:
		t.Logf("request released %v after the loss", at.Sub(lost))
	case <-time.After(maxKeyForetell / 2):
		t.Fatalf("the request still waits %v after the loss", maxKeyForetell/2)
	}
	if p.keyAsked.Load() || p.passing.Load() {
		t.Fatal("a request is still marked for the pump to foretell, or frames marked passed on")
	}
}

// TestWHIPKeyFrameForetold: each key frame request (PLI) the publisher gets once video flows was
// told to the session first, and one video frame written after that, before the PLI went out:
// the packager must know that the next frames may be the key frame asked for before it decides
// whether the part ending at the newest frame may go out ahead of the frame after it.
func TestWHIPKeyFrameForetold(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed")
	}
	vf, af := testMedia(t)
	ing := &fakeIngest{key: "sk_good"}
	s, _ := startServer(t, Config{UDPListen: "127.0.0.1:0", Timeout: 3 * time.Second, KeyFrameInterval: 600 * time.Millisecond},
		ing, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	hs := httptest.NewServer(s)
	defer hs.Close()
	pctx, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	code, _, pc := publishWHIP(t, hs.URL+"/whip", "sk_good", vf, af, pctx)
	if code != http.StatusCreated {
		t.Fatalf("publish: status %d", code)
	}
	defer pc.Close()
	var mu sync.Mutex
	var plis []time.Time
	go func() {
		for {
			pkts, _, err := pc.GetSenders()[0].ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					mu.Lock()
					plis = append(plis, time.Now())
					mu.Unlock()
				}
			}
		}
	}()
	time.Sleep(3500 * time.Millisecond)
	pcancel()

	sess := ing.sessions[0]
	sess.mu.Lock()
	steps := slices.Clone(sess.steps)
	sess.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	first := slices.IndexFunc(steps, func(s step) bool { return !s.told })
	if first < 0 {
		t.Fatal("no video frame written")
	}
	checked, next := 0, 0
	for _, at := range plis {
		// A request made before video flowed goes out at once.
		if at.Before(steps[first].at) {
			continue
		}
		told := slices.IndexFunc(steps[next:], func(s step) bool { return s.told })
		if told < 0 || next+told+1 >= len(steps) || steps[next+told+1].told || !steps[next+told+1].at.Before(at) {
			t.Fatalf("a PLI came at %v with no ExpectKeyFrame then a video write before it since %v (%d steps since, told %v)",
				at.Format("15:04:05.000"), steps[min(next, len(steps)-1)].at.Format("15:04:05.000"), len(steps)-next, told >= 0)
		}
		next += told + 2
		checked++
	}
	if checked < 3 {
		t.Fatalf("%d PLIs after video started (of %d), want one every 600 ms", checked, len(plis))
	}
	t.Logf("%d PLIs, each foretold", checked)
}

// TestWHIPTimeout: a publisher whose ICE never connects (it never applies the answer) is
// detached with an error after the timeout, and its channel is free again.
func TestWHIPTimeout(t *testing.T) {
	ing := &fakeIngest{key: "sk_good"}
	s, _ := startServer(t, Config{UDPListen: "127.0.0.1:0", Timeout: time.Second}, ing, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(s)
	defer hs.Close()

	pc, _ := webrtc.NewPeerConnection(webrtc.Configuration{})
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/whip", strings.NewReader(offer.SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer sk_good")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("offer: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !ing.sessions[0].detached() {
		if time.Now().After(deadline) {
			t.Fatal("a publisher that never connected is still attached after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ing.sessions[0].detachErr; err == nil || !strings.Contains(err.Error(), "no media") {
		t.Fatalf("detached with %v, want the timeout", err)
	}
	// OPTIONS advertises what the endpoint takes.
	req, _ = http.NewRequest(http.MethodOptions, hs.URL+"/whip", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent || resp.Header.Get("Accept-Post") != "application/sdp" {
		t.Fatalf("OPTIONS: %v %v", resp, err)
	}
}

// TestWHIPLossDropsUntilKeyFrame: a video packet that never arrives (the publisher never sent
// it, so no NACK brings it back) loses its frame, and the frames after it, which refer to it,
// are not passed on: the session gets the frames before the loss, then nothing until the next
// key frame (this publisher ignores PLIs and sends one a second). The loss is seen lossWait
// after it, and the frames held meanwhile are dropped with it.
func TestWHIPLossDropsUntilKeyFrame(t *testing.T) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const lost = 35 // the 11th frame of the second GOP (frames 25, 50 and 75 are key frames)
	sess, log := publishFrames(t, pc, func(frame, i, n int, pkt *rtp.Packet) bool { return frame != lost || i != 0 })
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(log)
		}
	})
	sess.mu.Lock()
	defer sess.mu.Unlock()
	gaps := 0
	for i := 1; i < len(sess.videoDTS); i++ {
		step := sess.videoDTS[i] - sess.videoDTS[i-1]
		if step == 40*time.Millisecond {
			continue
		}
		gaps++
		if missing := int(step/(40*time.Millisecond)) - 1; !sess.keys[i] || missing != 50-lost {
			t.Errorf("after frame %d, %d frames missing and the next is key %v; want the %d from the lost one to the next key frame",
				i-1, missing, sess.keys[i], 50-lost)
		}
	}
	// The last frame stays in the sample builder, which ends a frame at the next one's packet.
	if want := 100 - (50 - lost) - 1; gaps != 1 || len(sess.videoDTS) != want {
		t.Fatalf("%d gaps in %d frames written, want one in %d", gaps, len(sess.videoDTS), want)
	}
}

// TestWHIPLossRepairedByNACK: a video packet lost on the wire once, and sent again when the
// ingest NACKs it, loses nothing, although the ingest now waits for a missing packet only as
// long as its round trip to the publisher leaves two NACK rounds (lossWait): on loopback the
// least wait, not the 500 ms it falls back to when the round trip is not known. The packet
// lost is the last of a key frame, which only the next frame shows missing: the wait counts in
// media time from the frame's first packets, so a frame interval of it is gone by then.
func TestWHIPLossRepairedByNACK(t *testing.T) {
	// The publisher's own NACK responder keeps every packet it sends and sends it again when
	// NACKed; the loss sits below it, on the wire: the first interceptor registered is the
	// last a packet passes on its way out.
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	wire := &lossyWire{}
	ir := &interceptor.Registry{}
	ir.Add(wire)
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const lost = 50 // a key frame: many packets, of which the first wait in the builder
	sess, log := publishFrames(t, pc, func(frame, i, n int, pkt *rtp.Packet) bool {
		if frame == lost && i == n-1 {
			wire.lose.Store(uint32(pkt.SequenceNumber) | 1<<16)
		}
		return true
	})
	if wire.lost.Load() != 1 {
		t.Fatalf("%d packets lost on the wire, want 1", wire.lost.Load())
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for i := 1; i < len(sess.videoDTS); i++ {
		if d := sess.videoDTS[i] - sess.videoDTS[i-1]; d != 40*time.Millisecond {
			t.Errorf("after frame %d the next came %v later, want 40ms: the retransmission did not repair the loss", i-1, d)
		}
	}
	if len(sess.videoDTS) != 99 {
		t.Errorf("%d frames written, want 99 (the last stays in the sample builder)", len(sess.videoDTS))
	}
	m := regexp.MustCompile(`rtt=(\S+) loss_wait=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the ingest logged no round trip and wait:\n%s", log)
	}
	rtt, err1 := time.ParseDuration(m[1])
	wait, err2 := time.ParseDuration(m[2])
	if err1 != nil || err2 != nil || rtt <= 0 || wait != lossWait(rtt) || wait >= maxLossWait {
		t.Errorf("round trip %s, wait %s: want a measured round trip and its wait, under %v", m[1], m[2], maxLossWait)
	}
	if strings.Contains(log, "packets lost") {
		t.Errorf("the ingest logged a loss:\n%s", log)
	}
}

// lossyWire is an interceptor that loses one outgoing RTP packet: the first with the sequence
// number in lose (set in bit 16 when armed).
type lossyWire struct {
	interceptor.NoOp
	lose, lost atomic.Uint32
}

func (w *lossyWire) NewInterceptor(string) (interceptor.Interceptor, error) { return w, nil }

func (w *lossyWire) BindLocalStream(_ *interceptor.StreamInfo, next interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if armed := w.lose.Load(); armed != 0 && uint16(armed) == h.SequenceNumber && w.lose.CompareAndSwap(armed, 0) {
			w.lost.Add(1)
			return len(payload), nil
		}
		return next.Write(h, payload, a)
	})
}

// publishFrames publishes testMedia's 100 frames of 25 fps H.264 (a key frame every 25) over
// pc to a fresh WHIP server, sending each packet that send (given the frame, the packet's index
// in it, the frame's packet count and the packet) returns true for, and returns the session
// once the frames have stopped coming, with what the server logged.
func publishFrames(t *testing.T, pc *webrtc.PeerConnection, send func(frame, i, n int, pkt *rtp.Packet) bool) (*fakeSession, string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is needed")
	}
	vf, _ := testMedia(t)
	ing := &fakeIngest{key: "sk_good"}
	log := &lockedBuffer{}
	s, _ := startServer(t, Config{UDPListen: "127.0.0.1:0", Timeout: 3 * time.Second}, ing, slog.New(slog.NewTextHandler(log, nil)))
	mux := http.NewServeMux()
	mux.Handle("/whip", s)
	mux.Handle("/whip/", s)
	hs := httptest.NewServer(mux)
	defer hs.Close()

	vt, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "glass")
	tr, err := pc.AddTransceiverFromTrack(vt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	// RTCP reaches the interceptors (the NACK responder) only as it is read.
	go func() {
		for {
			if _, _, err := tr.Sender().ReadRTCP(); err != nil {
				return
			}
		}
	}()
	connected := onConnected(pc)
	if code, _ := signalWHIP(t, pc, hs.URL+"/whip", "sk_good"); code != http.StatusCreated {
		t.Fatalf("publish: status %d", code)
	}
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("not connected in 5 s")
	}
	pz := rtp.NewPacketizer(1200, 96, 1, &rtpcodecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	sendH264(context.Background(), vf, func(frame int, au []byte) {
		pkts := pz.Packetize(au, 3600)
		for i, pkt := range pkts {
			if send(frame, i, len(pkts), pkt) {
				_ = vt.WriteRTP(pkt)
			}
		}
	})
	// The frames still on their way are written once they stop coming for a while.
	for n, still := -1, 0; still < 3; time.Sleep(100 * time.Millisecond) {
		ing.mu.Lock()
		sess := ing.sessions[0]
		ing.mu.Unlock()
		sess.mu.Lock()
		if len(sess.videoDTS) == n {
			still++
		} else {
			n, still = len(sess.videoDTS), 0
		}
		sess.mu.Unlock()
	}
	ing.mu.Lock()
	defer ing.mu.Unlock()
	return ing.sessions[0], log.String()
}

// lockedBuffer is a bytes.Buffer that a log may write to while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The ICE UDP socket asks for a 4 MB receive buffer: the kernel grants up to net.core.rmem_max
// (and reports twice what it grants), or all of it to a process that may lift that cap
// (SO_RCVBUFFORCE), so here it must hold at least the smaller of the two, or all.
// With the kernel's default (rmem_default, usually 208 KB) a few publishers' video lost
// packets whenever the reader was held off the cores.
func TestUDPReadBuffer(t *testing.T) {
	s, _ := startServer(t, Config{UDPListen: "127.0.0.1:0", Timeout: 3 * time.Second}, &fakeIngest{key: "sk_good"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.udp.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	want := min(udpReadBuffer, limit)
	if canForceReadBuffer(t) {
		want = udpReadBuffer
	}
	if got < want {
		t.Fatalf("ICE UDP receive buffer %d bytes, want at least %d (rmem_max %d)", got, want, limit)
	}
	t.Logf("ICE UDP receive buffer %d bytes (rmem_max %d)", got, limit)
}

// canForceReadBuffer tells whether this process may set a socket's receive buffer past
// net.core.rmem_max (SO_RCVBUFFORCE needs CAP_NET_ADMIN, which root in a container may lack).
func canForceReadBuffer(t *testing.T) bool {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 1<<20)
	}); err != nil {
		t.Fatal(err)
	}
	return serr == nil
}

// startServer starts a WHIP server whose sessions run until the test ends, and returns it with
// the context they run under.
func startServer(t *testing.T, cfg Config, ing Ingest, log *slog.Logger) (*Server, context.Context) {
	t.Helper()
	s, err := New(cfg, ing, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(served) }()
	t.Cleanup(func() { cancel(); <-served })
	return s, ctx
}
