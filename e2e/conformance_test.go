package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"glasscast/origin/llhlscheck"
)

// TestLLHLSConformance runs every row of reference/llhls.md (P1–P19, D1–D13) against a real
// ffmpeg stream published over RTMP to `serve`. D8 freezes ffmpeg (SIGSTOP) so no part comes
// while the broadcast stays open; D5 ends the broadcast.
func TestLLHLSConformance(t *testing.T) {
	// D10 is for servers without delta updates; P15 needs a second rendition, which a BASIC
	// channel does not have.
	runConformance(t, types.ChannelTypeBasicChannelType, "D10", "P15")
}

// runConformance runs the checklist on a channel of the given type; the rows in
// notApplicable may (and only they may) report that they do not apply.
func runConformance(t *testing.T, typ types.ChannelType, notApplicable ...string) {
	runConformanceVia(t, typ, func(n *node, key string) stallable { return publish(t, n.rtmpURL(key), pubOptions{}) }, 0, false, notApplicable...)
}

// stallable is a publisher the checklist can pause (D8) and end (D5): ffmpeg over RTMP or
// SRT, or a browser over WHIP.
type stallable interface {
	// stall stops the media while the connection stays open; resume sends again.
	stall() error
	resume() error
	stop()
}

// stall freezes ffmpeg (SIGSTOP): nothing is sent, and the connection stays open.
func (p *publisher) stall() error  { return p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *publisher) resume() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// runConformanceVia is runConformance with the publisher that start starts (RTMP, SRT, WHIP).
// drain is how long media sent before a stall may still arrive (SRT's latency buffer);
// variableRate says the publisher's frame rate drifts, which P2 then allows for.
func runConformanceVia(t *testing.T, typ types.ChannelType, start func(n *node, key string) stallable, drain time.Duration, variableRate bool, notApplicable ...string) {
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	c := n.ivsClient()
	ctx := ctxT(t, 5*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: typ, InsecureIngest: true})
	pub := start(n, key)
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	// Let the window fill past CAN-SKIP-UNTIL (12 s) so delta updates have something to skip.
	time.Sleep(16 * time.Second)

	target := &llhlscheck.Target{
		URL:               *ch.PlaybackUrl + "?token=opaque-viewer-token",
		Tolerance:         250 * time.Millisecond,
		VariableFrameRate: variableRate,
		Stall: func(ctx context.Context) (func(context.Context) error, error) {
			if err := pub.stall(); err != nil {
				return nil, err
			}
			time.Sleep(drain)
			// Media already sent may still be on its way (an encoder running behind on loaded
			// cores leaves frames in the socket): the stall starts once the live edge rests.
			if err := waitEdgeRests(ctx, mediaPlaylistURL(*ch.PlaybackUrl), time.Second); err != nil {
				_ = pub.resume()
				return nil, err
			}
			return func(context.Context) error { return pub.resume() }, nil
		},
		End: func(ctx context.Context) error {
			pub.stop()
			waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
			return nil
		},
	}
	for _, phase := range []llhlscheck.Phase{llhlscheck.Live, llhlscheck.Stalling, llhlscheck.Ending} {
		t.Run(map[llhlscheck.Phase]string{llhlscheck.Live: "live", llhlscheck.Stalling: "stalling", llhlscheck.Ending: "ending"}[phase], func(t *testing.T) {
			for _, chk := range llhlscheck.Checks() {
				if chk.Phase != phase {
					continue
				}
				t.Run(chk.ID, func(t *testing.T) {
					if phase == llhlscheck.Live {
						t.Parallel()
					}
					err := chk.Run(ctx, target)
					if errors.Is(err, llhlscheck.ErrNotApplicable) {
						if !slices.Contains(notApplicable, chk.ID) {
							t.Fatalf("%s %s: %v", chk.ID, chk.Title, err)
						}
						t.Skipf("%s: %v", chk.ID, err)
					}
					if err != nil {
						t.Fatalf("%s %s: %v", chk.ID, chk.Title, err)
					}
				})
			}
		})
	}
}

// waitEdgeRests returns once the live edge of a media playlist has not moved for quiet (at
// most 15 s).
func waitEdgeRests(ctx context.Context, mediaURL string, quiet time.Duration) error {
	var last time.Time
	since := time.Now()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		edge, err := liveEdge(mediaURL)
		if err != nil {
			return err
		}
		if !edge.Equal(last) {
			last, since = edge, time.Now()
		} else if time.Since(since) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: the live edge still moves 15 s after the publisher stalled", mediaURL)
}
