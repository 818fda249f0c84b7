package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"glasscast/metadata"
)

// idleSockets opens n TCP connections to addr that never send a byte, from the loopback
// source addresses in srcs in turn (all of 127.0.0.0/8 reaches this host), and closes them
// when the test ends.
func idleSockets(t *testing.T, addr string, n int, srcs []string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcs[i%len(srcs)])}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle socket %d from %s: %v", i, srcs[i%len(srcs)], err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// loopbacks returns n source addresses 127.0.<base>.1, 127.0.<base>.2, ...
func loopbacks(base, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.%d.%d", base+(i/250), 1+i%250)
	}
	return out
}

// rssKB is a process's resident memory, from /proc.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// timeToLive starts ffmpeg to url and returns how long the channel took to be LIVE.
func timeToLive(t *testing.T, ctx context.Context, c *ivs.Client, arn *string, url string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	p := publish(t, url, pubOptions{Size: "640x360"})
	for {
		out, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: arn})
		if err == nil && out.Stream.State == types.StreamStateStreamLive {
			d := time.Since(start)
			p.stop()
			return d
		}
		select {
		case <-p.exited:
			t.Fatalf("ffmpeg gave up %v after it started; the ingest refused it:\n%s", time.Since(start).Round(time.Millisecond), p.output())
		default:
		}
		if time.Since(start) > within {
			t.Fatalf("not LIVE %v after ffmpeg started: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIngestIdleFlood: a thousand idle sockets on each ingest port, some from the publisher's
// own address and most from a spread of others, never keep a publisher with a valid key out,
// over RTMP or RTMPS. It also measures what 1,000 idle sockets cost the server.
func TestIngestIdleFlood(t *testing.T) {
	n := startServe(t, "")
	t.Cleanup(func() {
		if t.Failed() {
			logs := n.Logs()
			if len(logs) > 4000 {
				logs = logs[len(logs)-4000:]
			}
			t.Logf("glasscast log (tail):\n%s", logs)
		}
	})
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)

	// Memory: 1,000 idle sockets from 250 addresses (4 each, under the per-address cap).
	time.Sleep(time.Second)
	before := rssKB(t, n.cmd.Process.Pid)
	idle := idleSockets(t, n.RTMPS, 1000, loopbacks(1, 250))
	time.Sleep(time.Second)
	after := rssKB(t, n.cmd.Process.Pid)
	t.Logf("server RSS %d KB before, %d KB with 1,000 idle RTMPS sockets open: %d KB (%.1f KB per socket)",
		before, after, after-before, float64(after-before)/1000)
	for _, s := range idle {
		s.Close()
	}

	// For comparison, the same publish with nothing else connected.
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	t.Logf("RTMPS without idle sockets: LIVE %v after ffmpeg started", timeToLive(t, ctx, c, ch.Arn, n.rtmpsURL(key), 20*time.Second).Round(time.Millisecond))

	for _, tc := range []struct {
		name string
		url  func(key string) string
	}{{"RTMP", n.rtmpURL}, {"RTMPS", n.rtmpsURL}} {
		t.Run(tc.name, func(t *testing.T) {
			ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
			// 2,000 sockets: on each port 100 from the publisher's own 127.0.0.1 and 900 from
			// 450 other addresses, more than the pending pool holds.
			for _, port := range []string{n.RTMP, n.RTMPS} {
				idleSockets(t, port, 100, []string{"127.0.0.1"})
				idleSockets(t, port, 900, loopbacks(10, 450))
			}
			d := timeToLive(t, ctx, c, ch.Arn, tc.url(key), 20*time.Second)
			t.Logf("%s: LIVE %v after ffmpeg started, with 2,000 idle sockets just opened on the ingest ports", tc.name, d.Round(time.Millisecond))
			if d > 10*time.Second {
				t.Errorf("%s: %v to go LIVE past idle sockets (goal: under 2 s)", tc.name, d)
			}
		})
	}
	// How long ffmpeg took from TCP accept to an accepted publish (the handshake deadline's budget).
	for _, line := range strings.Split(n.Logs(), "\n") {
		if strings.Contains(line, "publisher connected") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "handshake=") || strings.HasPrefix(f, "secure=") {
					t.Log(f)
				}
			}
		}
	}
}

// TestIngestPendingPerIP: one address holds at most ingest.maxPendingPerIp unauthenticated
// connections; its next one pushes out its oldest, and other addresses are untouched.
func TestIngestPendingPerIP(t *testing.T) {
	n := startServe(t, "", "--ingest-max-pending-per-ip", "4", "--ingest-handshake-timeout", "30s")
	mine := idleSockets(t, n.RTMP, 4, []string{"127.0.0.7"})
	other := idleSockets(t, n.RTMP, 1, []string{"127.0.0.8"})
	open := func(c net.Conn, wait time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	for i, c := range mine {
		if !open(c, 200*time.Millisecond) {
			t.Fatalf("pending connection %d of 4 was closed; the cap is 4", i)
		}
	}
	fifth := idleSockets(t, n.RTMP, 1, []string{"127.0.0.7"})[0]
	if open(mine[0], 3*time.Second) {
		t.Fatal("the address's oldest pending connection stayed open past its cap")
	}
	for i, c := range append(mine[1:], fifth, other[0]) {
		if !open(c, 200*time.Millisecond) {
			t.Fatalf("connection %d was closed; only the oldest of the capped address should be", i)
		}
	}
}

// TestIngestHandshakeDeadline: a TLS handshake that never completes, and an RTMP handshake
// that stalls, are closed at ingest.handshakeTimeout (3 s by default), not held longer.
func TestIngestHandshakeDeadline(t *testing.T) {
	n := startServe(t, "")
	for _, tc := range []struct {
		name, addr string
		first      []byte
	}{
		// A TLS record header announcing a 512-byte ClientHello, and then nothing.
		{"TLS", n.RTMPS, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}},
		// RTMP's C0 (version 3) without C1.
		{"RTMP", n.RTMP, []byte{0x03}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := idleSockets(t, tc.addr, 1, []string{"127.0.0.1"})[0]
			start := time.Now()
			if _, err := conn.Write(tc.first); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := conn.Read(buf); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatal("the server still holds the stalled handshake after 20 s")
					}
					break
				}
			}
			d := time.Since(start)
			t.Logf("%s: stalled handshake closed after %v", tc.name, d.Round(time.Millisecond))
			if d < 2*time.Second || d > 7*time.Second {
				t.Fatalf("%s: stalled handshake closed after %v; want about 3 s", tc.name, d)
			}
		})
	}
	if !strings.Contains(n.Logs(), "cut by the handshake deadline") {
		t.Error("no warning about connections cut by the handshake deadline")
	}
}

// TestInBandMetadataLimits: in-band onTextData obeys PutMetadata's rules: text over 1 KB is
// dropped, and a burst shares the channel's 5-per-second budget with PutMetadata.
func TestInBandMetadataLimits(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	clip := encodeClip(t, 8, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p")

	text := func(conn *gortmplib.Client, s string) {
		if err := conn.Write(&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000,
			Payload: amf0.Data{"onTextData", amf0.Object{{Key: "text", Value: s}}}}); err != nil {
			t.Error(err)
		}
	}
	oversize := "big-" + strings.Repeat("x", metadata.MaxBytes)
	sent := map[string]bool{}
	var putErr error
	publishClip(t, ctx, n.rtmpURL(key), clip, func(elapsed time.Duration, conn *gortmplib.Client) {
		once := func(at time.Duration, name string, fn func()) {
			if elapsed >= at && !sent[name] {
				sent[name] = true
				fn()
			}
		}
		once(2*time.Second, "oversize", func() { text(conn, oversize) })
		once(3*time.Second, "burst", func() {
			for i := range 20 {
				text(conn, "burst-"+strconv.Itoa(i))
			}
			// Give the ingest a moment to read the burst, then the API shares its budget.
			time.Sleep(100 * time.Millisecond)
			_, putErr = c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String("api-after-burst")})
		})
		once(5*time.Second, "later", func() { text(conn, "later") })
	})
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)

	texts := endedCueTexts(t, *ch.PlaybackUrl)
	burst := 0
	for s := range texts {
		if strings.HasPrefix(s, "burst-") {
			burst++
		}
	}
	t.Logf("%d of 20 burst cues delivered; PutMetadata right after the burst: %v", burst, putErr)
	if texts[oversize] {
		t.Error("an in-band onTextData over 1 KB reached the stream")
	}
	if burst == 0 || burst > 6 {
		t.Errorf("%d of 20 in-band cues sent at once were delivered; the channel allows 5 per second", burst)
	}
	if !texts["later"] {
		t.Errorf("the in-band cue sent after the burst is missing; found %v", texts)
	}
	wantCode(t, putErr, "ThrottlingException")
	if !strings.Contains(n.Logs(), "in-band timed metadata dropped") {
		t.Error("no log line for the dropped in-band metadata")
	}
}
