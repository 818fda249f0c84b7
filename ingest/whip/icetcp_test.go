package whip

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// heldOpen reports which of conns the server still holds after wait: a read that times out
// rather than failing. The reads run at once: a deadline already past fails a read at once
// even when the peer has closed.
func heldOpen(conns []net.Conn, wait time.Duration) []bool {
	deadline := time.Now().Add(wait)
	held := make([]bool, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			held[i] = errors.As(err, &ne) && ne.Timeout()
		})
	}
	wg.Wait()
	return held
}

// TestICETCPBounded: idle connections to the ICE-TCP port past the cap (8 per session, here
// one) are closed at once, those within it are cut after firstSTUNTimeout, not pion's 30 s,
// and give their places back, so a publisher over ICE-TCP then connects.
func TestICETCPBounded(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ing := &fakeIngest{key: "sk_good"}
	s, _ := startServer(t, Config{TCPListen: "127.0.0.1:0", MaxSessions: 1}, ing, log)
	_, tcp := s.Addrs()

	var conns []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", tcp.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	held := 0
	for _, h := range heldOpen(conns, 500*time.Millisecond) {
		if h {
			held++
		}
	}
	if held != iceTCPPerSession {
		t.Fatalf("%d of %d idle connections held, want %d", held, len(conns), iceTCPPerSession)
	}
	for i, h := range heldOpen(conns, firstSTUNTimeout+time.Second) {
		if h {
			t.Fatalf("idle connection %d still held after %v", i, firstSTUNTimeout+time.Second)
		}
	}

	// A publisher whose only way in is ICE-TCP gets in.
	mux := http.NewServeMux()
	mux.Handle("/whip", s)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	se.SetIncludeLoopbackCandidate(true)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "glass")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(vt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	connected := onConnected(pc)
	if code, _ := signalWHIP(t, pc, hs.URL+"/whip", "sk_good"); code != http.StatusCreated {
		t.Fatalf("offer: status %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("the publisher did not connect over ICE-TCP")
	}
}
