package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestSRTFigures measures glass to glass in hls.js for an SRT-fed channel against an
// RTMP-fed one, in one `serve` with both publishers (ffmpeg's 30 fps test pattern, 2 s key
// frames; SRT encrypted with the channel's passphrase at the ingest's 500 ms latency) live at
// once, and the player page on each in turn, alternating which goes first, for rounds of
// seconds each. Two figures per protocol:
//   - behind PDT: how far behind program-date-time the page plays (player.mjs's
//     behindWallClock). Program-date-time is the ingest's arrival clock, so this is
//     ingest-to-screen, and it leaves out what comes before the ingest: SRT's receive buffer.
//   - encoder to PDT: program-date-time of a segment minus when ffmpeg started plus the
//     segment's media time since the stream's first frame: the transport before the ingest
//     (SRT's latency buffer), plus ffmpeg's start-up, the same for both.
//
// Their sum is glass to glass, the encoder's start-up included. A measurement, run on demand:
//
//	GLASSCAST_FIGURES=1 [GLASSCAST_ROUNDS=3] [GLASSCAST_SIZE=640x360] go test -count=1 -run TestSRTFigures -v ./e2e/
func TestSRTFigures(t *testing.T) {
	if os.Getenv("GLASSCAST_FIGURES") == "" {
		t.Skip("a measurement: set GLASSCAST_FIGURES=1 to run it")
	}
	needBrowser(t)
	rounds, seconds, size := 3, 20, "1280x720"
	if v, err := strconv.Atoi(os.Getenv("GLASSCAST_ROUNDS")); err == nil {
		rounds = v
	}
	if v := os.Getenv("GLASSCAST_SIZE"); v != "" {
		size = v // 640x360 lightens ffmpeg and Chromium on loaded cores
	}
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 15*time.Minute)

	type feed struct {
		name    string
		ch      *types.Channel
		started time.Time
		offset  []float64 // encoder to PDT, s
		behind  []float64 // per round, the median behind PDT
	}
	rtmpCh, rtmpKey := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("rtmp"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	srtCh, srtKey := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("srt"), Type: types.ChannelTypeBasicChannelType})
	feeds := []*feed{{name: "RTMP", ch: rtmpCh}, {name: "SRT", ch: srtCh}}
	feeds[0].started = time.Now()
	publish(t, n.rtmpURL(rtmpKey), pubOptions{Size: size})
	feeds[1].started = time.Now()
	publishSRT(t, srtURL(n.SRT, srtKey, aws.ToString(srtCh.Srt.Passphrase)), pubOptions{Size: size})
	var wg sync.WaitGroup
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, f := range feeds {
		waitLive(t, ctx, c, f.ch.Arn)
		waitPlayable(t, *f.ch.PlaybackUrl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.offset = encoderToPDT(pctx, mediaPlaylistURL(*f.ch.PlaybackUrl), f.started)
		}()
	}

	for r := range rounds {
		order := feeds
		if r%2 == 1 {
			order = []*feed{feeds[1], feeds[0]}
		}
		for _, f := range order {
			var behind []float64
			var trace []string // how the page started: a second of samples each
			nodeScript(t, func(m map[string]json.RawMessage) {
				if raw, ok := m["sample"]; ok {
					var s playerSample
					_ = json.Unmarshal(raw, &s)
					if s.BehindWallClock != nil && s.CurrentTime > 4 && !s.Paused {
						behind = append(behind, *s.BehindWallClock)
					}
					if len(trace) < 30 && s.BehindWallClock != nil {
						trace = append(trace, fmt.Sprintf("t=%.1f behind=%.2f", s.CurrentTime, *s.BehindWallClock))
					}
				}
			}, "player.mjs", n.endpoint()+"/player/"+chIDOf(f.ch), strconv.Itoa(seconds), "")
			if os.Getenv("GLASSCAST_TRACE") != "" {
				t.Logf("round %d %-4s first samples: %s", r+1, f.name, strings.Join(trace, " "))
			}
			if len(behind) < 10 {
				t.Fatalf("round %d %s: %d samples", r+1, f.name, len(behind))
			}
			f.behind = append(f.behind, pct(behind, 50))
			t.Logf("round %d %-4s: behind PDT p50 %.2f s p90 %.2f s (%d samples)", r+1, f.name, pct(behind, 50), pct(behind, 90), len(behind))
		}
	}
	stop()
	wg.Wait()
	for _, f := range feeds {
		if len(f.offset) == 0 {
			t.Fatalf("%s: no encoder-to-PDT sample", f.name)
		}
		t.Logf("FIGURES %-4s: behind PDT per round %.2f s; encoder to PDT p50 %.2f s (p10 %.2f, p90 %.2f; %d segments); glass to glass about %.2f s",
			f.name, f.behind, pct(f.offset, 50), pct(f.offset, 10), pct(f.offset, 90), len(f.offset), pct(f.behind, 50)+pct(f.offset, 50))
	}
}

// encoderToPDT polls a media playlist until ctx ends and returns, for every segment whose
// media time since the stream's first segment is known, its program-date-time minus (started
// + that media time), in seconds.
func encoderToPDT(ctx context.Context, playlistURL string, started time.Time) []float64 {
	type seg struct {
		pdt time.Time
		dur float64
	}
	segs := map[int]seg{}
	first := -1
	for ctx.Err() == nil {
		if b, err := httpGet(ctx, playlistURL); err == nil {
			msn := -1
			var pdt time.Time
			for _, l := range strings.Split(string(b), "\n") {
				switch {
				case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
					msn, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
					if first < 0 {
						first = msn
					}
				case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
					pdt, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"))
				case strings.HasPrefix(l, "#EXTINF:"):
					d, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
					if msn >= 0 {
						segs[msn] = seg{pdt, d}
						msn++
						pdt = time.Time{}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	var out []float64
	media := 0.0
	for k := first; ; k++ {
		s, ok := segs[k]
		if !ok {
			break
		}
		if !s.pdt.IsZero() && k > first+2 { // past the start, once the ingest's clock has settled
			out = append(out, s.pdt.Sub(started.Add(time.Duration(media*float64(time.Second)))).Seconds())
		}
		media += s.dur
	}
	return out
}
