package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gohlslib/v2"

	"glasscast/metadata"
	"glasscast/origin/llhlscheck"
)

type playerSample struct {
	Now             int64    `json:"now"`
	CurrentTime     float64  `json:"currentTime"`
	Paused          bool     `json:"paused"`
	Latency         *float64 `json:"latency"`
	BehindWallClock *float64 `json:"behindWallClock"`
	Cues            int      `json:"cues"`
	PartsUsed       *bool    `json:"partsUsed"`
}

type playerCue struct {
	Text      string   `json:"text"`
	Type      string   `json:"type"`
	StartTime float64  `json:"startTime"`
	FiredAt   int64    `json:"firedAt"`
	MediaDate *float64 `json:"mediaDate"`
}

// TestTimedMetadataInBrowser: ten PutMetadata calls through the real IVS client reach the
// player page in headless Chromium as ten cues, in order, with their exact text, each within
// a part duration of the video frame that was live when the call was accepted; gohlslib sees
// the emsg boxes too; oversize, too-fast and offline calls get IVS's errors.
func TestTimedMetadataInBrowser(t *testing.T) {
	needBrowser(t)
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("meta"), Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	chID := (*ch.Arn)[strings.LastIndexByte(*ch.Arn, '/')+1:]
	publish(t, n.rtmpURL(key), pubOptions{Size: playerSize})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)

	// gohlslib plays alongside and remembers every part it downloads.
	var partsMu sync.Mutex
	var parts []string
	gc := &gohlslib.Client{URI: *ch.PlaybackUrl, OnDownloadPart: func(u string) { partsMu.Lock(); parts = append(parts, u); partsMu.Unlock() }}
	gc.OnTracks = func([]*gohlslib.Track) error { return nil }
	if err := gc.Start(); err != nil {
		t.Fatal(err)
	}
	defer gc.Close()

	payloads := make([]string, 10)
	for i := range payloads {
		switch i % 3 {
		case 0:
			payloads[i] = fmt.Sprintf(`{"type":"poll","id":%d,"question":"Which colour next? #%d","options":["red","green","blue"]}`, i, i)
		case 1:
			payloads[i] = fmt.Sprintf(`{"type":"product","id":%d,"name":"Glasscast mug %d","price":"$%d.00"}`, i, i, 10+i)
		default:
			payloads[i] = fmt.Sprintf(`{"type":"score","id":%d,"home":"Reds","away":"Blues","homeScore":%d,"awayScore":1}`, i, i)
		}
	}
	// Each call is bracketed by the live edge (the end of the newest part the playlist lists)
	// read just before and just after it: the cue belongs in the part being built then. On
	// loaded cores the encoder runs behind the wall clock, and so does the whole stream.
	type call struct {
		before, after         time.Time
		edgeBefore, edgeAfter time.Time
	}
	calls := make([]call, len(payloads))
	mediaURL := mediaPlaylistURL(*ch.PlaybackUrl)
	playing := make(chan struct{})
	var once sync.Once
	var samples []playerSample
	var cues []playerCue
	go func() {
		select {
		case <-playing:
		case <-time.After(60 * time.Second):
			return
		}
		for i, p := range payloads {
			edgeBefore, errBefore := liveEdge(mediaURL)
			calls[i].before = time.Now()
			_, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(p)})
			calls[i].after = time.Now()
			edgeAfter, errAfter := liveEdge(mediaURL)
			calls[i].edgeBefore, calls[i].edgeAfter = edgeBefore, edgeAfter
			if errBefore != nil || errAfter != nil {
				t.Errorf("live edge around PutMetadata %d: %v %v", i, errBefore, errAfter)
			}
			if err != nil {
				t.Errorf("PutMetadata %d: %v", i, err)
			}
			time.Sleep(time.Second)
		}
	}()
	shot := filepath.Join(artifactDir(t), "player-overlay.png")
	pageURL := n.endpoint() + "/player/" + chID
	nodeScript(t, func(m map[string]json.RawMessage) {
		if raw, ok := m["sample"]; ok {
			var s playerSample
			_ = json.Unmarshal(raw, &s)
			samples = append(samples, s)
			if s.CurrentTime > 4 && !s.Paused {
				once.Do(func() { close(playing) })
			}
		}
		if raw, ok := m["done"]; ok {
			var d struct {
				Cues       []playerCue       `json:"cues"`
				TrackCues  []json.RawMessage `json:"trackCues"`
				Screenshot bool              `json:"screenshot"`
			}
			_ = json.Unmarshal(raw, &d)
			t.Logf("cues held by the page's text tracks: %s", d.TrackCues)
			cues = d.Cues
			if !d.Screenshot {
				t.Error("no screenshot with an overlay was taken")
			}
		}
	}, "player.mjs", pageURL, "28", shot)

	if len(cues) != len(payloads) {
		t.Fatalf("the page saw %d cues, want %d: %+v", len(cues), len(payloads), cues)
	}
	partTarget := partTargetOf(t, *ch.PlaybackUrl)
	var delays, edgeLag, afterEdge []time.Duration
	for i, cue := range cues {
		if cue.Text != payloads[i] {
			t.Fatalf("cue %d text %q, want %q", i, cue.Text, payloads[i])
		}
		if cue.MediaDate == nil {
			t.Fatalf("cue %d: no program-date-time mapping", i)
		}
		// The server dates a cue by when it arrived, clamped into the part being built then: the
		// cue is no earlier than the live edge read before the call, and no later than its
		// arrival (up to a part after the call answered: it reaches the ingest through NATS) or
		// the end of the part after the one being built when the call answered, whichever is
		// first. On loaded cores the stream runs behind the wall clock and the clamp decides.
		// The slack covers the playlist's and hls.js's millisecond rounding.
		const slack = 10 * time.Millisecond
		at := time.UnixMilli(int64(*cue.MediaDate))
		lo := calls[i].edgeBefore.Add(-slack)
		hi := calls[i].after.Add(partTarget)
		if e := calls[i].edgeAfter.Add(2 * partTarget); e.Before(hi) {
			hi = e
		}
		if at.Before(lo) || at.After(hi.Add(slack)) {
			t.Fatalf("cue %d is at %s on the stream's clock; the live edge was %s before the call and %s after it, the call ran %s..%s, part target %v",
				i, at.Format("15:04:05.000"), calls[i].edgeBefore.Format("15:04:05.000"), calls[i].edgeAfter.Format("15:04:05.000"),
				calls[i].before.Format("15:04:05.000"), calls[i].after.Format("15:04:05.000"), partTarget)
		}
		edgeLag = append(edgeLag, calls[i].before.Sub(calls[i].edgeBefore))
		afterEdge = append(afterEdge, at.Sub(calls[i].edgeBefore))
		delays = append(delays, time.UnixMilli(cue.FiredAt).Sub(calls[i].after))
	}
	slices.Sort(delays)
	var lat, wall []float64
	for _, s := range samples {
		if s.Latency != nil && s.BehindWallClock != nil && s.CurrentTime > 5 {
			lat = append(lat, *s.Latency)
			wall = append(wall, *s.BehindWallClock)
		}
	}
	slices.Sort(lat)
	slices.Sort(wall)
	if len(lat) == 0 || samples[len(samples)-1].PartsUsed == nil || !*samples[len(samples)-1].PartsUsed {
		t.Fatal("hls.js never played in low-latency mode with parts")
	}
	slices.Sort(edgeLag)
	t.Logf("cues after the live edge read before their call: %v", afterEdge)
	t.Logf("FIGURES metadata delivery (PutMetadata answered -> cue fired): p50 %v p95 %v; hls.js latency median %.2fs, behind wall clock median %.2fs; live edge behind the wall clock at the calls p50 %v max %v",
		delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)*95/100].Round(time.Millisecond), lat[len(lat)/2], wall[len(wall)/2],
		edgeLag[len(edgeLag)/2].Round(time.Millisecond), edgeLag[len(edgeLag)-1].Round(time.Millisecond))

	// gohlslib downloaded the parts that carry the cues: the emsg boxes are in them.
	partsMu.Lock()
	seen := map[string]bool{}
	for _, u := range parts {
		resp, err := http.Get(u)
		if err != nil {
			continue
		}
		var b []byte
		b, _ = readAll(resp)
		msgs, err := metadata.ParseEmsg(b)
		if err != nil {
			t.Fatalf("part %s: %v", u, err)
		}
		for _, m := range msgs {
			if m.Version == 1 && m.SchemeIDURI == metadata.SchemeAOM {
				seen[m.Text] = true
			}
		}
	}
	partsMu.Unlock()
	for i, p := range payloads {
		if !seen[p] {
			t.Fatalf("gohlslib's parts never carried cue %d", i)
		}
	}

	// Errors, as IVS answers them.
	_, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(strings.Repeat("x", 1025))})
	wantCode(t, err, "ValidationException")
	throttled := 0
	for i := 0; i < 8; i++ {
		_, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(fmt.Sprint(i))})
		if errorCode(err) == "ThrottlingException" {
			throttled++
		} else if err != nil {
			t.Fatalf("burst call %d: %v", i, err)
		}
	}
	if throttled < 3 {
		t.Fatalf("8 calls at once: %d throttled, want at least 3 (5 per second)", throttled)
	}
	offline, _ := testChannel(t, ctx, c, &ivs.CreateChannelInput{})
	_, err = c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: offline.Arn, Metadata: aws.String("x")})
	wantCode(t, err, "ChannelNotBroadcasting")
}

// liveEdge is the program-date-time at which the newest part a media playlist lists ends. It
// returns an error rather than failing the test, for callers off the test's goroutine.
func liveEdge(mediaURL string) (time.Time, error) {
	resp, err := http.Get(mediaURL)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("%s: %d %v", mediaURL, resp.StatusCode, err)
	}
	pl, err := llhlscheck.ParseMedia(body)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", mediaURL, err)
	}
	var end time.Time
	if n := len(pl.Segments); n > 0 {
		s := pl.Segments[n-1]
		end = s.PDT.Add(time.Duration(s.Duration * float64(time.Second)))
	}
	if pl.Pending != nil {
		end = end.Add(time.Duration(pl.Pending.Duration * float64(time.Second))) // its parts, summed by the parser
	}
	if end.Year() < 2000 {
		return time.Time{}, fmt.Errorf("%s lists no segment with a program-date-time", mediaURL)
	}
	return end, nil
}

func partTargetOf(t *testing.T, playbackURL string) time.Duration {
	t.Helper()
	_, body := get(t, mediaPlaylistURL(playbackURL))
	var s float64
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "#EXT-X-PART-INF:PART-TARGET="); ok {
			fmt.Sscanf(v, "%g", &s)
		}
	}
	if s == 0 {
		t.Fatal("no PART-TARGET")
	}
	return time.Duration(s * float64(time.Second))
}
