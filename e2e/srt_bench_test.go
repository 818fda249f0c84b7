package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// BenchmarkIngestCPU publishes 30 s of the DESIGN.md 720p30 pattern to a BASIC channel of
// `serve` over RTMP, then 30 s to another over SRT (AES-128), then 30 s over SRT unencrypted,
// and reports the glasscast process's CPU per second of stream for each: what one pass-through publisher costs by
// protocol, packaging and the in-process origin included (ffmpeg's own CPU is not counted).
func BenchmarkIngestCPU(b *testing.B) {
	srtAddr := freeAddr(b)
	n := startServeProcess(b, "--ingest-srt-listen", srtAddr, "--ingest-reconnect-grace", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	measure := func(insecure bool, output func(out *ivs.CreateChannelOutput) []string) float64 {
		out, err := n.client.CreateChannel(ctx, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: insecure})
		if err != nil {
			b.Fatal(err)
		}
		before := processCPU(b, n.cmd.Process.Pid)
		start := time.Now()
		args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "30", "-c:v", "libx264", "-preset", "veryfast",
			"-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac"}, output(out)...)
		if o, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			b.Fatalf("ffmpeg: %v\n%s", err, o)
		}
		time.Sleep(2 * time.Second) // the broadcast ends
		return (processCPU(b, n.cmd.Process.Pid) - before).Seconds() / time.Since(start).Seconds()
	}
	rtmp := measure(true, func(out *ivs.CreateChannelOutput) []string {
		return []string{"-f", "flv", "rtmp://" + n.rtmp + "/app/" + aws.ToString(out.StreamKey.Value)}
	})
	srt := measure(false, func(out *ivs.CreateChannelOutput) []string {
		return []string{"-f", "mpegts", srtURL(srtAddr, aws.ToString(out.StreamKey.Value), aws.ToString(out.Channel.Srt.Passphrase))}
	})
	plain := measure(true, func(out *ivs.CreateChannelOutput) []string {
		return []string{"-f", "mpegts", srtURL(srtAddr, aws.ToString(out.StreamKey.Value), "")}
	})
	b.ReportMetric(rtmp*1000, "cpu-ms/s-rtmp")
	b.ReportMetric(srt*1000, "cpu-ms/s-srt")
	b.ReportMetric(plain*1000, "cpu-ms/s-srt-clear")
}
