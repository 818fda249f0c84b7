package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	ivstypes "github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// waitSessionFailed polls GetStreamSession until the stream session has an end time, and checks
// that its history tells of a failure the way IVS does.
func waitSessionFailed(t *testing.T, ctx context.Context, c *ivs.Client, arn, streamID *string, within time.Duration) *ivstypes.StreamSession {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: arn, StreamId: streamID})
		if err == nil && out.StreamSession.EndTime != nil {
			ss := out.StreamSession
			for _, name := range []string{"Stream Failure", "Stream End", "Session Ended"} {
				if !hasEvent(ss.TruncatedEvents, name) {
					t.Errorf("session ended without a %q event: %+v", name, ss.TruncatedEvents)
				}
			}
			return ss
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream session still open %v later: %v", within, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestIngestCrashEndsBroadcast: kill -9 of the ingest process. The origin it pushed to ends
// the broadcast once the registration expired (EXT-X-ENDLIST, then 404 after origin.linger)
// instead of serving a frozen live playlist forever, and the stream session is closed as failed.
func TestIngestCrashEndsBroadcast(t *testing.T) {
	natsAddr := freePort(t)
	ctl := startServe(t, "", "--nats-listen", natsAddr)
	c := ctl.ivsClient()
	ctx := ctxT(t, 4*time.Minute)
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, ctl)...)
	oAddr := freePort(t)
	startRole(t, "origin", append(join, "--origin-listen", oAddr, "--origin-linger", "5s")...)
	rtmp := freePort(t)
	ing := startRole(t, "ingest", append(join, "--ingest-origin-urls", "http://"+oAddr, "--ingest-rtmp-listen", rtmp,
		"--ingest-rtmps-listen", "")...)

	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: ivstypes.ChannelTypeBasicChannelType, InsecureIngest: true})
	channelID := (*ch.Arn)[strings.LastIndex(*ch.Arn, "/")+1:]
	publish(t, "rtmp://"+rtmp+"/app/"+key, pubOptions{Size: "640x360"})
	st := waitLive(t, ctx, c, ch.Arn)
	var media string
	deadline := time.Now().Add(30 * time.Second)
	for media == "" {
		if time.Now().After(deadline) {
			t.Fatal("the origin never served the stream")
		}
		media, _ = originMediaURL(ctx, "http://"+oAddr, channelID)
		time.Sleep(200 * time.Millisecond)
	}

	ing.kill()
	killed := time.Now()
	waitOffline(t, ctx, c, ch.Arn, 30*time.Second)

	// ENDLIST once the registration is gone, then offline after the 5 s linger.
	var ended time.Duration
	for {
		body, status, err := getStatus(ctx, media)
		if err == nil && status == http.StatusOK && strings.Contains(body, "#EXT-X-ENDLIST") {
			ended = time.Since(killed)
			break
		}
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("origin still serves the broadcast as live 60 s after its ingest died: %d %v\n%s", status, err, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("origin ended the broadcast %.1f s after kill -9 of the ingest", ended.Seconds())
	for {
		_, status, err := getStatus(ctx, media)
		if err == nil && status == http.StatusNotFound {
			break
		}
		if time.Since(killed) > ended+30*time.Second {
			t.Fatalf("ended broadcast still served after its linger: %d %v", status, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	ss := waitSessionFailed(t, ctx, c, ch.Arn, st.StreamId, 60*time.Second)
	t.Logf("session closed at %v (killed at %v)", ss.EndTime.UTC().Format(time.RFC3339), killed.UTC().Format(time.RFC3339))
}

// TestServeCrashClosesSession: kill -9 of serve in the middle of a broadcast, then a restart on
// the same data: the session left open by the crash is closed as failed.
func TestServeCrashClosesSession(t *testing.T) {
	n := startServe(t, "")
	c := n.ivsClient()
	ctx := ctxT(t, 4*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: ivstypes.ChannelTypeBasicChannelType, InsecureIngest: true})
	pub := publish(t, "rtmp://"+n.RTMP+"/app/"+key, pubOptions{Size: "640x360"})
	st := waitLive(t, ctx, c, ch.Arn)
	time.Sleep(2 * time.Second) // the session record is written after GetStream shows LIVE
	n.restart(true)
	pub.stop()
	waitOffline(t, ctx, c, ch.Arn, 30*time.Second)
	waitSessionFailed(t, ctx, c, ch.Arn, st.StreamId, 60*time.Second)
}
