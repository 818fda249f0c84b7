package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
)

// BenchmarkServeStartup1000Channels measures how long `serve` takes to be ready with 1,000
// channels (and their stream keys) in its data folder, and its resident memory then.
func BenchmarkServeStartup1000Channels(b *testing.B) {
	dir := b.TempDir()
	n := startServeTB(b, dir)
	c := n.ivsClient()
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String(fmt.Sprintf("c%04d", i))}); err != nil {
				b.Error(err)
			}
		}(i)
	}
	wg.Wait()
	reStartup := regexp.MustCompile(`msg="glasscast ready".* startup=(\S+)`)
	for i := 0; i < b.N; i++ {
		n.stop()
		n.logMu.Lock()
		n.log.Reset()
		n.logMu.Unlock()
		began := time.Now()
		n.start()
		ready := time.Since(began)
		m := reStartup.FindStringSubmatch(n.Logs())
		rss := residentKB(n.cmd.Process.Pid)
		out, err := c.ListChannels(ctx, &ivs.ListChannelsInput{})
		if err != nil || len(out.Channels) != 100 {
			b.Fatalf("after restart: %v", err)
		}
		b.ReportMetric(ready.Seconds()*1000, "ms-to-healthz")
		if m != nil {
			d, _ := time.ParseDuration(m[1])
			b.ReportMetric(d.Seconds()*1000, "ms-startup-logged")
		}
		b.ReportMetric(float64(rss)/1024, "MiB-rss")
	}
}

func residentKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	return 0
}
