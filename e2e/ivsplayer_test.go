package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"glasscast/metadata"
)

type ivsSample struct {
	Now int64 `json:"now"`
	IVS *struct {
		State      string  `json:"state"`
		Position   float64 `json:"position"`
		LowLatency bool    `json:"lowLatency"`
	} `json:"ivs"`
	HLS struct {
		CurrentTime float64 `json:"currentTime"`
		Parts       bool    `json:"parts"`
	} `json:"hls"`
}

type ivsError struct {
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Source  string `json:"source"`
	Message string `json:"message"`
	Details string `json:"details"` // hls.js's
	At      int64  `json:"at"`
}

type ivsReport struct {
	States []struct {
		State string `json:"state"`
		At    int64  `json:"at"`
	} `json:"states"`
	Events []struct {
		Event string `json:"event"`
	} `json:"events"`
	Errors []ivsError `json:"errors"`
	// HLSWarnings are hls.js's non-fatal errors (details), which it recovers from itself.
	HLSWarnings []string `json:"hlsWarnings"`
	LoadedAt    int64    `json:"loadedAt"` // when a page started by ivsPlayerAt loaded the stream
	IVSCues     []struct {
		Text string `json:"text"`
		At   int64  `json:"at"`
	} `json:"ivsCues"`
	HLSCues []struct {
		Type  string `json:"type"`
		At    int64  `json:"at"`
		Bytes []byte `json:"bytes"`
	} `json:"hlsCues"`
}

// runIVSPlayer runs the tutorial page on url for up to seconds; onSample sees each sample.
func runIVSPlayer(t *testing.T, url string, seconds int, untilEnded bool, onSample func(ivsSample)) ivsReport {
	t.Helper()
	var rep ivsReport
	args := []string{url, strconv.Itoa(seconds)}
	if untilEnded {
		args = append(args, "until-ended")
	}
	nodeScript(t, func(m map[string]json.RawMessage) {
		if raw, ok := m["sample"]; ok && onSample != nil {
			var s ivsSample
			if json.Unmarshal(raw, &s) == nil {
				onSample(s)
			}
		}
		if raw, ok := m["done"]; ok {
			_ = json.Unmarshal(raw, &rep)
		}
	}, "ivsplayer.mjs", args...)
	return rep
}

// ivsPlayerAt launches the tutorial page's browser and returns once it is up: load then
// starts both players on a playback URL at once (without Chromium's seconds of start-up in
// between), and the report arrives on the channel after seconds of playing.
func ivsPlayerAt(t *testing.T, seconds int, onSample func(ivsSample)) (load func(url string), report <-chan ivsReport) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "playback-url")
	launched := make(chan struct{})
	done := make(chan ivsReport, 1)
	go func() {
		var rep ivsReport
		nodeScript(t, func(m map[string]json.RawMessage) {
			if _, ok := m["launched"]; ok {
				close(launched)
			}
			if raw, ok := m["sample"]; ok && onSample != nil {
				var s ivsSample
				if json.Unmarshal(raw, &s) == nil {
					onSample(s)
				}
			}
			if raw, ok := m["done"]; ok {
				_ = json.Unmarshal(raw, &rep)
			}
		}, "ivsplayer.mjs", "wait:"+file, strconv.Itoa(seconds))
		done <- rep
	}()
	select {
	case <-launched:
	case rep := <-done:
		done <- rep
		t.Fatal("the IVS player page ended before it was loaded")
	case <-time.After(time.Minute):
		t.Fatal("Chromium not up after a minute")
	}
	return func(url string) {
		// Written whole, then renamed: the script must never read half a URL.
		if err := os.WriteFile(file+".tmp", []byte(url), 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Error(err)
		}
	}, done
}

func (r ivsReport) sawState(s string) bool {
	return slices.ContainsFunc(r.States, func(x struct {
		State string `json:"state"`
		At    int64  `json:"at"`
	}) bool {
		return x.State == s
	})
}

// ivsError is the first error the IVS player (not hls.js beside it) reported.
func (r ivsReport) ivsError() *ivsError {
	for i := range r.Errors {
		if r.Errors[i].Type != "hls.js" {
			return &r.Errors[i]
		}
	}
	return nil
}

// TestIVSPlayer runs the IVS getting-started tutorial's player page against Glasscast, with
// only the playback URL changed: it plays in low-latency mode, fires ten TEXT_METADATA_CUE
// events for ten PutMetadata calls while hls.js on the same page sees exactly ten cues and uses
// parts, ends with ENDED, and reports 404 for an offline channel and 403 without a token.
func TestIVSPlayer(t *testing.T) {
	needBrowser(t)
	gop := 60 // the seed's 2 s key frame interval; GLASSCAST_GOP=30 measures 1 s
	if v, err := strconv.Atoi(os.Getenv("GLASSCAST_GOP")); err == nil {
		gop = v
	}
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 4*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	pub := publish(t, n.rtmpURL(key), pubOptions{GOP: gop, Size: playerSize})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)

	payloads := make([]string, 10)
	for i := range payloads {
		payloads[i] = fmt.Sprintf(`{"type":"poll","id":%d,"question":"Q%d — ünïcode ✓"}`, i, i)
	}
	var mu sync.Mutex
	accepted := make([]time.Time, len(payloads))
	var started, stopped bool
	var samples []ivsSample
	rep := runIVSPlayer(t, *ch.PlaybackUrl, 75, true, func(s ivsSample) {
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
		if !started && s.IVS != nil && s.IVS.State == "Playing" && s.IVS.Position > 4 && s.HLS.CurrentTime > 4 {
			started = true
			go func() {
				for i, p := range payloads {
					if _, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(p)}); err != nil {
						t.Errorf("PutMetadata %d: %v", i, err)
					}
					mu.Lock()
					accepted[i] = time.Now()
					mu.Unlock()
					time.Sleep(time.Second)
				}
				time.Sleep(6 * time.Second)
				mu.Lock()
				stopped = true
				mu.Unlock()
				pub.stop() // the broadcast ends: ENDLIST, and the player must reach ENDED
			}()
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if !started || !stopped {
		t.Fatalf("the IVS player never played steadily: states %+v errors %+v", rep.States, rep.Errors)
	}
	for _, s := range []string{"Ready", "Buffering", "Playing", "Ended"} {
		if !rep.sawState(s) {
			t.Fatalf("IVS player never reached %s: %+v (errors %+v)", s, rep.States, rep.Errors)
		}
	}
	if len(rep.Events) == 0 || rep.Events[0].Event != "INITIALIZED" {
		t.Fatalf("no INITIALIZED event: %+v", rep.Events)
	}
	if len(rep.Errors) != 0 {
		t.Fatalf("player errors: %+v", rep.Errors)
	}
	// Low latency, and a playhead that keeps up with the wall clock while live.
	var low, first, last *ivsSample
	for i := range samples {
		s := &samples[i]
		if s.IVS == nil || s.IVS.State != "Playing" {
			continue
		}
		if s.IVS.LowLatency {
			low = s
		}
		if first == nil {
			first = s
		}
		if accepted[len(accepted)-1].IsZero() || time.UnixMilli(s.Now).Before(accepted[len(accepted)-1]) {
			last = s
		}
	}
	if low == nil {
		t.Fatal("isLiveLowLatency() never returned true")
	}
	wall := float64(last.Now-first.Now) / 1000
	if advanced := last.IVS.Position - first.IVS.Position; wall < 5 || advanced < 0.9*wall {
		t.Fatalf("IVS player position advanced %.2fs in %.2fs of wall clock", advanced, wall)
	}
	if len(rep.IVSCues) != len(payloads) {
		t.Fatalf("IVS player fired %d TEXT_METADATA_CUE events, want %d: %+v", len(rep.IVSCues), len(payloads), rep.IVSCues)
	}
	var hlsTexts []string
	for _, cue := range rep.HLSCues {
		text, err := metadata.ID3Text(cue.Bytes)
		if err != nil {
			t.Fatalf("hls.js cue: %v", err)
		}
		hlsTexts = append(hlsTexts, text)
	}
	if len(hlsTexts) != len(payloads) {
		t.Fatalf("hls.js saw %d cues, want exactly %d: %q", len(hlsTexts), len(payloads), hlsTexts)
	}
	var ivsDelay, hlsDelay []time.Duration
	for i, p := range payloads {
		if rep.IVSCues[i].Text != p || hlsTexts[i] != p {
			t.Fatalf("cue %d: IVS %q hls.js %q, want %q", i, rep.IVSCues[i].Text, hlsTexts[i], p)
		}
		ivsDelay = append(ivsDelay, time.UnixMilli(rep.IVSCues[i].At).Sub(accepted[i]))
		hlsDelay = append(hlsDelay, time.UnixMilli(rep.HLSCues[i].At).Sub(accepted[i]))
	}
	if !samples[len(samples)-1].HLS.Parts {
		t.Fatal("hls.js did not use parts")
	}
	slices.Sort(ivsDelay)
	slices.Sort(hlsDelay)
	t.Logf("FIGURES GOP %d frames: latency (PutMetadata accepted -> cue fired at the playhead) IVS player p50 %v max %v; hls.js p50 %v max %v",
		gop, ivsDelay[len(ivsDelay)/2].Round(time.Millisecond), ivsDelay[len(ivsDelay)-1].Round(time.Millisecond),
		hlsDelay[len(hlsDelay)/2].Round(time.Millisecond), hlsDelay[len(hlsDelay)-1].Round(time.Millisecond))
}

// TestIVSPlayerErrors: an offline channel is ErrorNotAvailable (404); a private channel plays
// with a token and fails with 403 without one.
func TestIVSPlayerErrors(t *testing.T) {
	needBrowser(t)
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	offline, _ := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	rep := runIVSPlayer(t, *offline.PlaybackUrl, 8, false, nil)
	if e := rep.ivsError(); e == nil || e.Type != "ErrorNotAvailable" || e.Code != 404 {
		t.Fatalf("offline channel: errors %+v, want ErrorNotAvailable 404", rep.Errors)
	}

	priv, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true, Authorized: true})
	token := playbackToken(t, ctx, c, *priv.Arn)
	publish(t, n.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, priv.Arn)
	waitPlayable(t, *priv.PlaybackUrl+"?token="+token)
	rep = runIVSPlayer(t, *priv.PlaybackUrl, 8, false, nil)
	if e := rep.ivsError(); e == nil || e.Code != 403 {
		t.Fatalf("private channel without token: errors %+v, want code 403", rep.Errors)
	}
	var playing bool
	rep = runIVSPlayer(t, *priv.PlaybackUrl+"?token="+token, 20, false, func(s ivsSample) {
		if s.IVS != nil && s.IVS.State == "Playing" && s.IVS.Position > 2 {
			playing = true
		}
	})
	if !playing || rep.ivsError() != nil {
		t.Fatalf("private channel with token: playing %v, errors %+v, states %+v", playing, rep.Errors, rep.States)
	}
}

// playCuesInIVSPlayer plays ch in Amazon's IVS player until it ends: once the player has
// played 3 s it sends each payload with PutMetadata, half a second apart, and 4 s later (the
// player's latency) stops the publisher. The player must reach Ready, Playing and Ended with
// no error, in low-latency mode, and fire the payloads as TEXT_METADATA_CUEs in order. fed
// names the input in failures ("SRT-fed ladder").
func playCuesInIVSPlayer(t *testing.T, ctx context.Context, c *ivs.Client, ch *types.Channel, payloads []string, stop func(), fed string) {
	t.Helper()
	_ = playCuesInIVSPlayerFrom(t, ctx, c, ch, payloads, stop, fed, func() {})
}

// playCuesInIVSPlayerFrom is playCuesInIVSPlayer that calls playing (on its own goroutine) when
// the player is first seen playing, and returns the page's report (hls.js plays beside it).
func playCuesInIVSPlayerFrom(t *testing.T, ctx context.Context, c *ivs.Client, ch *types.Channel, payloads []string, stop func(), fed string, playing func()) ivsReport {
	t.Helper()
	var once, started sync.Once
	var lowLatency bool
	rep := runIVSPlayer(t, *ch.PlaybackUrl, 60, true, func(s ivsSample) {
		if s.IVS == nil || s.IVS.State != "Playing" {
			return
		}
		started.Do(func() { go playing() })
		lowLatency = lowLatency || s.IVS.LowLatency
		if s.IVS.Position > 3 {
			once.Do(func() {
				go func() {
					for i, p := range payloads {
						if _, err := c.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(p)}); err != nil {
							t.Errorf("PutMetadata %d: %v", i, err)
						}
						time.Sleep(500 * time.Millisecond)
					}
					time.Sleep(4 * time.Second) // the player's latency
					stop()
				}()
			})
		}
	})
	for _, s := range []string{"Ready", "Playing", "Ended"} {
		if !rep.sawState(s) {
			t.Fatalf("the IVS player never reached %s on the %s: %+v (errors %+v)", s, fed, rep.States, rep.Errors)
		}
	}
	if e := rep.ivsError(); e != nil || !lowLatency {
		t.Fatalf("IVS player: error %+v, low latency %v", e, lowLatency)
	}
	var got []string
	for _, cue := range rep.IVSCues {
		got = append(got, cue.Text)
	}
	if !slices.Equal(got, payloads) {
		t.Fatalf("the IVS player fired %q, want %q", got, payloads)
	}
	return rep
}
