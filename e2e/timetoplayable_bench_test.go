package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// BenchmarkTimeToPlayable measures how long a new broadcast takes to be watchable: from the
// first byte ffmpeg sends over RTMP (seen by a TCP proxy in front of the ingest) to GetStream
// saying LIVE, and to the first part of the first variant answering 200 through the playback
// URL. ms-key-to-part is that part's fetch time less its program date time, which the ingest
// stamps with the arrival of the broadcast's first frame (a key frame). One new channel per
// iteration; run with -benchtime 1x.
//
//	go test ./e2e -run '^$' -bench TimeToPlayable -benchtime 1x
func BenchmarkTimeToPlayable(b *testing.B) {
	n := startServeTB(b, "")
	c := n.ivsClient()
	for _, typ := range []types.ChannelType{types.ChannelTypeBasicChannelType, types.ChannelTypeStandardChannelType} {
		for _, gop := range []int{60, 30} { // the seed's 2 s key frame interval, and 1 s
			b.Run(fmt.Sprintf("%s/gop=%ds", typ, gop/30), func(b *testing.B) {
				var live, part, keyToPart time.Duration
				for i := 0; i < b.N; i++ {
					st := timeToPlayable(b, n, c, typ, gop)
					live += st.live
					part += st.part
					keyToPart += st.keyToPart
				}
				ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) }
				b.ReportMetric(ms(live), "ms-to-live")
				b.ReportMetric(ms(part), "ms-to-part")
				b.ReportMetric(ms(keyToPart), "ms-key-to-part")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

type playableTimes struct {
	live, part, keyToPart time.Duration
}

func timeToPlayable(b *testing.B, n *node, c *ivs.Client, typ types.ChannelType, gop int) playableTimes {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{Type: typ, InsecureIngest: true})
	if err != nil {
		b.Fatal(err)
	}
	ch, key := out.Channel, *out.StreamKey.Value
	proxy := newFirstByteProxy(b, n.RTMP)

	type partSeen struct {
		at, pdt time.Time
	}
	parts := make(chan partSeen, 1)
	go func() {
		for ctx.Err() == nil {
			if pdt, ok := firstPartFetchable(ctx, *ch.PlaybackUrl); ok {
				parts <- partSeen{time.Now(), pdt}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// The e2e publishers' ffmpeg command (publishAs), for benchmarks.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", fmt.Sprint(gop),
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", "rtmp://"+proxy.Addr+"/app/"+key)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	var live time.Time
	for live.IsZero() {
		out, err := c.GetStream(ctx, &ivs.GetStreamInput{ChannelArn: ch.Arn})
		if err == nil && out.Stream.State == types.StreamStateStreamLive {
			live = time.Now()
		} else if ctx.Err() != nil {
			b.Fatalf("channel not LIVE: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var p partSeen
	select {
	case p = <-parts:
	case <-ctx.Done():
		b.Fatal("no part fetchable through the playback URL")
	}
	first := <-proxy.first
	return playableTimes{live: live.Sub(first), part: p.at.Sub(first), keyToPart: p.at.Sub(p.pdt)}
}

// firstPartFetchable follows the multivariant playlist to its first variant's media playlist
// and fetches the first part (or segment) listed there; it returns that media playlist's first
// program date time once the part answers 200.
func firstPartFetchable(ctx context.Context, playbackURL string) (time.Time, bool) {
	fetch := func(u string) (string, bool) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err == nil && resp.StatusCode == 200
	}
	resolve := func(base, ref string) string {
		bu, err1 := url.Parse(base)
		ru, err2 := url.Parse(ref)
		if err1 != nil || err2 != nil {
			return ""
		}
		return bu.ResolveReference(ru).String()
	}
	mv, ok := fetch(playbackURL)
	if !ok {
		return time.Time{}, false
	}
	var variant string
	for l := range strings.Lines(mv) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			variant = resolve(playbackURL, l)
			break
		}
	}
	media, ok := fetch(variant)
	if variant == "" || !ok {
		return time.Time{}, false
	}
	var pdt time.Time
	var part string
	sc := bufio.NewScanner(strings.NewReader(media))
	for sc.Scan() && part == "" {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:") && pdt.IsZero():
			pdt, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"))
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			if i := strings.Index(l, `URI="`); i >= 0 {
				part = strings.SplitN(l[i+5:], `"`, 2)[0]
			}
		case l != "" && !strings.HasPrefix(l, "#"):
			part = l
		}
	}
	if part == "" || pdt.IsZero() {
		return time.Time{}, false
	}
	_, ok = fetch(resolve(variant, part))
	return pdt, ok
}
