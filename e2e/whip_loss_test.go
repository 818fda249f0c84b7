package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// TestWHIPLossInIVSPlayer: Amazon's IVS player plays a WHIP channel whose publisher, once the
// player is playing, loses video frames for good (their packets are never sent, so no NACK
// brings them back): the key frame with which it lowers its resolution, as a browser does
// under load, then a frame inside a GOP and a key frame. The frames after a lost one refer to
// it, and the IVS player stops at the first that does not decode with ErrorInvalidData
// (Decode), as in CI runs where Chromium's packets were lost: they must not reach it. The
// player plays through the freezes and the new size to ENDED. The publisher is pion, not a
// browser, so that the losses are chosen; like an encoder, it answers a key frame request
// (PLI) at its next frame.
func TestWHIPLossInIVSPlayer(t *testing.T) {
	needBrowser(t)
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	logOnFailure(t, n)
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("whip-loss"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})

	pub := publishLossy(t, ctx, n.endpoint()+"/whip", key, []string{"640x360", "480x270"})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	// Armed as the player starts playing: the resize within a second (the player's decoder
	// still holds the first size then), a P-frame lost 1.2 s after arming and a key frame
	// after 2.8 s; the cues go out 3 s into playback and the stream stops 4.5 s after them.
	lostP, lostKey := false, false
	arm := func() {
		pub.arm(func(frame int, key, resized bool) bool {
			switch {
			case resized:
				return true
			case !key && frame >= 30 && !lostP:
				lostP = true
				return true
			case key && frame >= 70 && !lostKey:
				lostKey = true
				return true
			}
			return false
		})
	}
	rep := playCuesInIVSPlayerFrom(t, ctx, c, ch, []string{`{"loss":1}`, `{"loss":2}`}, pub.stop, "WHIP channel with lost packets", arm)
	// hls.js plays the same channel on the page, through the same losses and the new size.
	for _, e := range rep.Errors {
		if e.Type == "hls.js" {
			t.Fatalf("hls.js: fatal %s (warnings %q)", e.Details, rep.HLSWarnings)
		}
	}
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	if !pub.resized.Load() || pub.lostKeys.Load() != 2 || pub.lost.Load() != 3 {
		t.Fatalf("the publisher lost %d frames (%d key frames), resized: %v; want 3 (2), resized", pub.lost.Load(), pub.lostKeys.Load(), pub.resized.Load())
	}
	logs := n.Logs()
	if !strings.Contains(logs, "dropping the frames until a key frame") || !strings.Contains(logs, "video parameters changed mid-stream") {
		t.Fatalf("serve saw no loss or no new size:\n%s", logs)
	}
	// Each loss freezes the video until the key frame then asked for, in one part.
	var long []string
	for _, m := range regexp.MustCompile(`part longer than PART-TARGET.* duration=(\S+)`).FindAllStringSubmatch(logs, -1) {
		long = append(long, m[1])
	}
	t.Logf("%d frames lost (%d of them key frames), %d key frames asked for; parts longer than PART-TARGET %v; hls.js warnings %q",
		pub.lost.Load(), pub.lostKeys.Load(), pub.plis.Load(), long, rep.HLSWarnings)
}

// lossyPublisher is a pion WHIP publisher of one H.264 track that never sends some frames.
type lossyPublisher struct {
	stop           func()
	lost, lostKeys atomic.Int64
	plis           atomic.Int64
	resized        atomic.Bool
	stopped        sync.Once
	lose           atomic.Pointer[func(frame int, key, resized bool) bool]
}

// arm has the publisher switch to its second size at its next key frame, and from then on
// not send the frames lose picks, by their number since arm, whether they are key frames
// and whether they are the first at the new size.
func (p *lossyPublisher) arm(lose func(frame int, key, resized bool) bool) { p.lose.Store(&lose) }

// publishLossy publishes a 25 fps test pattern at sizes[0] with a key frame every second over
// WHIP, in real time and looped, until stop; once armed, from its next key frame at
// sizes[1]. A PLI makes the next frame sent the file's next key frame.
func publishLossy(t *testing.T, ctx context.Context, endpoint, key string, sizes []string) *lossyPublisher {
	t.Helper()
	var files [2][][]byte
	var keyFlags [2][]bool
	for i, size := range sizes[:2] {
		file := filepath.Join(t.TempDir(), size+".h264")
		out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size="+size+":rate=25", "-t", "8",
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-bf", "0", "-g", "25", "-keyint_min", "25",
			"-b:v", "1200k", "-bsf:v", "h264_mp4toannexb", "-f", "h264", file).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v %s", err, out)
		}
		files[i], keyFlags[i] = readAccessUnits(t, file)
	}

	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	vt, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "glass")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(vt)
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyPublisher{}
	var keyAsked atomic.Bool
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				if _, ok := pkt.(*rtcp.PictureLossIndication); ok {
					p.plis.Add(1)
					keyAsked.Store(true)
				}
			}
		}
	}()
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	status, location, answer := offerWHIP(t, ctx, endpoint, key, pc.LocalDescription().SDP)
	if status != http.StatusCreated {
		t.Fatalf("WHIP offer: %d %s", status, answer)
	}
	session, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the WHIP publisher did not connect in 10 s")
	}

	sendCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pz := rtp.NewPacketizer(1200, 96, 1, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		aus, keys := files[0], keyFlags[0]
		i := 0
		armed := -1 // the frame at which the publisher was armed
		for frame := 0; sendCtx.Err() == nil; frame++ {
			lose := p.lose.Load()
			if lose != nil && armed < 0 {
				armed = frame
			}
			resized := false
			if lose != nil && keys[i] && !p.resized.Load() {
				aus, keys, i, resized = files[1], keyFlags[1], 0, true
				p.resized.Store(true)
			}
			if keyAsked.Swap(false) {
				for !keys[i] {
					i = (i + 1) % len(aus)
				}
			}
			pkts := pz.Packetize(aus[i], 3600) // a lost frame's sequence numbers go unused
			if lose != nil && (*lose)(frame-armed, keys[i], resized) {
				p.lost.Add(1)
				if keys[i] {
					p.lostKeys.Add(1)
				}
			} else {
				for _, pkt := range pkts {
					_ = vt.WriteRTP(pkt)
				}
			}
			i = (i + 1) % len(aus)
			select {
			case <-tick.C:
			case <-sendCtx.Done():
			}
		}
	}()
	p.stop = func() {
		p.stopped.Do(func() {
			cancel()
			<-done
			if base, err := url.Parse(endpoint); err == nil {
				req, _ := http.NewRequest(http.MethodDelete, base.ResolveReference(session).String(), nil)
				req.Header.Set("Authorization", "Bearer "+key)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			_ = pc.Close()
		})
	}
	t.Cleanup(p.stop)
	return p
}

// offerWHIP POSTs an SDP offer to a WHIP endpoint with key as the bearer token, and returns
// the status, the session's Location and the body (the answer, or the error).
func offerWHIP(t *testing.T, ctx context.Context, endpoint, key, offer string) (status int, location, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// readAccessUnits splits an Annex-B H.264 file into access units (each ending at a slice;
// parameter sets go with the slice after them) and tells which are key frames.
func readAccessUnits(t *testing.T, file string) (aus [][]byte, keys []bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h264reader.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var pending []byte
	for {
		nal, err := r.NextNAL()
		if err != nil {
			break
		}
		pending = append(pending, append([]byte{0, 0, 0, 1}, nal.Data...)...)
		switch nal.UnitType {
		case h264reader.NalUnitTypeCodedSliceIdr, h264reader.NalUnitTypeCodedSliceNonIdr:
			aus, keys = append(aus, pending), append(keys, nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr)
			pending = nil
		}
	}
	if len(aus) == 0 || !keys[0] {
		t.Fatalf("%s: %d access units, the first no key frame", file, len(aus))
	}
	return aus, keys
}
