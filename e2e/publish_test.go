package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// publisher is a running ffmpeg pushing a test pattern.
type publisher struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	exited chan struct{}
	err    error
}

// pubOptions shape the ffmpeg test pattern.
// playerSize is the source of tests that time real-time playback in Chromium. x264 at 720p30
// and Chromium decoding it take most of two slow shared cores; then the encoder runs behind
// the wall clock, and so does everything the tests time. Pixels are not what they check.
const playerSize = "640x360"

type pubOptions struct {
	Size     string // default 1280x720
	Rate     int    // default 30
	GOP      int    // frames per key frame interval, default 2 s
	Duration time.Duration
	Extra    []string // extra output options before -f flv
}

// publish starts `ffmpeg -re` with the DESIGN.md test pattern to url.
func publish(t *testing.T, url string, o pubOptions) *publisher {
	t.Helper()
	return publishAs(t, "flv", url, o)
}

// publishAs is publish in a given ffmpeg output format: flv for RTMP, mpegts for SRT.
func publishAs(t *testing.T, format, url string, o pubOptions) *publisher {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not installed (make deps installs it)")
	}
	if o.Size == "" {
		o.Size = "1280x720"
	}
	if o.Rate == 0 {
		o.Rate = 30
	}
	if o.GOP == 0 {
		o.GOP = 2 * o.Rate
	}
	args := []string{"-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", o.Size, o.Rate),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	if o.Duration > 0 {
		args = append(args, "-t", fmt.Sprintf("%.3f", o.Duration.Seconds()))
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", fmt.Sprint(o.GOP),
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k")
	args = append(args, o.Extra...)
	args = append(args, "-f", format, url)
	p := &publisher{cmd: exec.Command("ffmpeg", args...), exited: make(chan struct{})}
	p.cmd.Stdout = &lockedWriter{p}
	p.cmd.Stderr = &lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

type lockedWriter struct{ p *publisher }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *publisher) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop interrupts ffmpeg (it closes the RTMP stream cleanly) and waits for it.
func (p *publisher) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// refused waits for ffmpeg to give up, as it does when the server refuses the publish.
func (p *publisher) refused(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		if p.err == nil {
			t.Fatalf("ffmpeg exited cleanly; the publish should have been refused:\n%s", p.output())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("ffmpeg still publishing 15 s after a publish that should be refused")
	}
}

func (n *node) rtmpURL(key string) string  { return "rtmp://" + n.RTMP + "/app/" + key }
func (n *node) rtmpsURL(key string) string { return "rtmps://" + n.RTMPS + "/app/" + key }

// testChannel creates a channel and returns it with its stream key value.
func testChannel(t *testing.T, ctx context.Context, c *ivs.Client, in *ivs.CreateChannelInput) (*types.Channel, string) {
	t.Helper()
	out, err := c.CreateChannel(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out.Channel, *out.StreamKey.Value
}

// waitLive polls GetStream until the channel is LIVE.
func waitLive(t *testing.T, ctx context.Context, c *ivs.Client, arn *string) *types.Stream {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: arn})
		if err == nil && out.Stream.State == types.StreamStateStreamLive {
			return out.Stream
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel not LIVE after 20 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOffline polls GetStream until it answers ChannelNotBroadcasting.
func waitOffline(t *testing.T, ctx context.Context, c *ivs.Client, arn *string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: arn})
		if errorCode(err) == "ChannelNotBroadcasting" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel still live %v later: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
