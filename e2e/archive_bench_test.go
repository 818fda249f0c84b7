package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	nethttp "net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"glasscast/archive/bucket"
	"glasscast/archive/spool"
)

// BenchmarkSpoolUpload measures how fast the spool drains into a real S3 server (versitygw on
// this machine): 4 MB objects, the size of a 10 s TS file of 720p at about 3 Mb/s.
func BenchmarkSpoolUpload(b *testing.B) {
	s3 := startS3(b)
	s3.createBucket(b, "bench-bucket")
	stores, err := bucket.New(bucket.Config{Endpoint: s3.URL(), AccessKeyID: s3AccessKey, SecretAccessKey: s3Secret, PathStyle: true})
	if err != nil {
		b.Fatal(err)
	}
	bkt, err := stores.Open("bench-bucket")
	if err != nil {
		b.Fatal(err)
	}
	sp, err := spool.New(spool.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	q, err := sp.Open("bench")
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, bkt, "ivs/v1/bench", nil)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := q.WriteFile(fmt.Sprintf("media/hls/720p30/%d.ts", i), data); err != nil {
			b.Fatal(err)
		}
		<-q.Idle() // uploaded, and removed from the spool
	}
}

// BenchmarkRecordingCPU publishes 30 s of the DESIGN.md 720p30 pattern to `serve` twice, once
// without and once with a recording configuration (thumbnails every 10 s), and reports the
// glasscast process's CPU (its own and its ffmpeg children's) per second of stream for both,
// and their difference: what recording one rendition adds.
func BenchmarkRecordingCPU(b *testing.B) {
	s3 := startS3(b)
	s3.createBucket(b, seedBucket)
	var per [2]float64
	for i, recorded := range []bool{false, true} {
		n := startServeProcess(b, append(s3.serveArgs(), "--ingest-reconnect-grace", "1s")...)
		c := n.client
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		in := &ivs.CreateChannelInput{Name: aws.String("cpu"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true}
		if recorded {
			out, err := c.CreateRecordingConfiguration(ctx, &ivs.CreateRecordingConfigurationInput{
				DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(seedBucket)}},
				ThumbnailConfiguration:   &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval, TargetIntervalSeconds: aws.Int64(10)}})
			if err != nil {
				b.Fatal(err)
			}
			for {
				g, err := c.GetRecordingConfiguration(ctx, &ivs.GetRecordingConfigurationInput{Arn: out.RecordingConfiguration.Arn})
				if err == nil && g.RecordingConfiguration.State == types.RecordingConfigurationStateActive {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			in.RecordingConfigurationArn = out.RecordingConfiguration.Arn
		}
		ch, err := c.CreateChannel(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		before := processCPU(b, n.cmd.Process.Pid)
		start := time.Now()
		pub := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "30", "-c:v", "libx264", "-preset", "veryfast",
			"-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", "rtmp://"+n.rtmp+"/app/"+*ch.StreamKey.Value)
		if out, err := pub.CombinedOutput(); err != nil {
			b.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		time.Sleep(5 * time.Second) // the recording's last upload
		per[i] = (processCPU(b, n.cmd.Process.Pid) - before).Seconds() / time.Since(start).Seconds()
		cancel()
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		_ = n.cmd.Wait()
	}
	b.ReportMetric(per[0]*1000, "cpu-ms/s-live")
	b.ReportMetric(per[1]*1000, "cpu-ms/s-recorded")
	b.ReportMetric((per[1]-per[0])*1000, "cpu-ms/s-added")
}

// benchNode is a `glasscast serve` started for a benchmark (the e2e harness's node takes a
// *testing.T).
type benchNode struct {
	cmd    *exec.Cmd
	rtmp   string
	client *ivs.Client
}

func startServeProcess(b *testing.B, extra ...string) *benchNode {
	b.Helper()
	http, rtmp := freeAddr(b), freeAddr(b)
	args := append([]string{"serve", "--data-dir", b.TempDir(), "--http-listen", http, "--https-listen", "",
		"--api-access-key-id", testAccessKey, "--api-secret-access-key", testSecret,
		"--ingest-rtmp-listen", rtmp, "--ingest-rtmps-listen", "", "--ingest-srt-listen", "", "--log-level", "warn"}, extra...)
	n := &benchNode{cmd: exec.Command(binary, args...), rtmp: rtmp}
	if err := n.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.cmd.Process.Kill(); _ = n.cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := nethttp.Get("http://" + http + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("serve not ready")
		}
	}
	n.client = ivs.New(ivs.Options{Region: testRegion, BaseEndpoint: aws.String("http://" + http),
		Credentials: staticCreds(testAccessKey, testSecret)})
	return n
}

// processCPU reads a process's user and system CPU, its waited-for children's included.
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
