package e2e

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// fromAddr is an HTTP client whose connections leave from local address ip (127.0.0.2 is a
// "region b" viewer in the director's CIDR table), optionally with a header on every request.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// askDirector requests a playback URL as a viewer using client and returns the status, the
// edge the director chose and the playlist.
func askDirector(t *testing.T, client *http.Client, u string, hdr ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(resp)
	return resp.StatusCode, resp.Header.Get("X-Glasscast-Edge"), string(body)
}

// playVia plays url with gohlslib through client for d and returns the video frames decoded
// and the hosts every request went to.
func playVia(t *testing.T, client *http.Client, u string, d time.Duration) (int, map[string]int) {
	t.Helper()
	var mu sync.Mutex
	frames := 0
	hosts := map[string]int{}
	c := &gohlslib.Client{URI: u, HTTPClient: client}
	c.OnRequest = func(r *http.Request) {
		mu.Lock()
		hosts[r.URL.Host]++
		mu.Unlock()
	}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			if _, ok := tr.Codec.(*codecs.H264); ok {
				c.OnDataH26x(tr, func(pts, dts int64, au [][]byte) {
					mu.Lock()
					frames++
					mu.Unlock()
				})
			}
		}
		return nil
	}
	runFor(t, c, d)
	mu.Lock()
	defer mu.Unlock()
	return frames, hosts
}

// waitSegment waits until a media playlist lists a complete segment: before that, gohlslib
// finds no EXTINF and stops with EOF.
func waitSegment(t *testing.T, mediaURL string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, body := get(t, mediaURL); code == 200 && strings.Contains(body, "#EXTINF") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists no complete segment after 20 s", mediaURL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDirector: serve (origin, ingest, API, and an edge in region a) with two `glasscast edge`
// processes in regions a and b that find the origin through the live registration, and a
// `glasscast director` that api.playbackBaseUrl points at. A viewer from region b (by CIDR
// table, or by the trusted header) is sent to the b edge and plays a private channel with
// its token; after kill -9 of the b edge new viewers go to region a at once; an offline
// channel is a 404 through the director.
func TestDirector(t *testing.T) {
	natsAddr, originAddr, dirAddr := freePort(t), freePort(t), freePort(t)
	a := startServe(t, "", "--nats-listen", natsAddr, "--origin-listen", originAddr, "--node-region", "a", "--node-name", "serve-a",
		"--api-playback-base-url", "http://"+dirAddr)
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, a)...)
	edgeA := startRole(t, "edge", append(join, "--node-region", "a", "--node-name", "edge-a")...)
	edgeB := startRole(t, "edge", append(join, "--node-region", "b", "--node-name", "edge-b")...)
	dir := &node{t: t, DataDir: t.TempDir(), HTTP: dirAddr}
	dir.args = append([]string{"director", "--data-dir", dir.DataDir, "--http-listen", dirAddr, "--https-listen", "",
		"--node-name", "director", "--node-region", "a", "--log-level", "debug",
		"--director-cidr-regions", "127.0.0.2/32=b", "--director-region-header", "X-Viewer-Region"}, join...)
	dir.start()
	t.Cleanup(dir.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("director log:\n%s", tail(dir.Logs(), 4000))
			t.Logf("edge b log:\n%s", tail(edgeB.Logs(), 4000))
		}
	})

	c := a.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true, Authorized: true})
	if !strings.HasPrefix(*ch.PlaybackUrl, "http://"+dirAddr+"/") {
		t.Fatalf("playback URL %s does not name the director", *ch.PlaybackUrl)
	}
	off, _ := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	publish(t, a.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	token := playbackToken(t, ctx, c, *ch.Arn)
	playback := *ch.PlaybackUrl + "?token=" + url.QueryEscape(token)

	viewerB := fromAddr("127.0.0.2")
	viewerA := fromAddr("127.0.0.1")
	// Wait until all three edges announced themselves and the broadcast plays through the b edge.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, edge, body := askDirector(t, viewerB, playback)
		if code == 200 && edge == "edge-b" {
			if !strings.Contains(body, "http://"+edgeB.HTTP+"/api/video/v1/") || !strings.Contains(body, "token=gc2.") {
				t.Fatalf("multivariant from the director does not send the viewer to edge b with a derived token:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("region-b viewer: %d from %q after 30 s:\n%s", code, edge, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The trusted header places a viewer too, whatever its address.
	if code, edge, _ := askDirector(t, viewerA, playback, "X-Viewer-Region", "b"); code != 200 || edge != "edge-b" {
		t.Fatalf("viewer with X-Viewer-Region b: %d from %q", code, edge)
	}
	if code, edge, _ := askDirector(t, viewerA, playback); code != 200 || (edge != "edge-a" && edge != "serve-a") {
		t.Fatalf("region-a viewer: %d from %q, want a region-a edge", code, edge)
	}
	// The token is checked at the edge, through the director.
	if code, _, _ := askDirector(t, viewerB, *ch.PlaybackUrl); code != http.StatusForbidden {
		t.Fatalf("private channel without a token through the director: %d, want 403", code)
	}
	if code, _, body := askDirector(t, viewerB, *off.PlaybackUrl); code != http.StatusNotFound {
		t.Fatalf("offline channel through the director: %d %q, want 404", code, body)
	}

	// A region-b viewer plays, every request after the director's going to edge b.
	waitSegment(t, mediaPlaylistURL("http://"+edgeB.HTTP+strings.TrimPrefix(*ch.PlaybackUrl, "http://"+dirAddr))+"?token="+url.QueryEscape(token))
	frames, hosts := playVia(t, viewerB, playback, 6*time.Second)
	t.Logf("region-b viewer: %d video frames in 6 s; requests by host: %v", frames, hosts)
	if frames < 60 {
		t.Fatalf("region-b viewer decoded only %d frames in 6 s", frames)
	}
	for h := range hosts {
		if h != edgeB.HTTP && h != dirAddr {
			t.Fatalf("region-b viewer fetched from %s (edge a %s, edge b %s, director %s)", h, edgeA.HTTP, edgeB.HTTP, dirAddr)
		}
	}

	// kill -9 of the b edge: new region-b viewers go to region a within a few seconds.
	edgeB.kill()
	killed := time.Now()
	var edge string
	for {
		var code int
		code, edge, _ = askDirector(t, viewerB, playback)
		if code == 200 && (edge == "edge-a" || edge == "serve-a") {
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("10 s after kill -9 of edge b, a region-b viewer gets %d from %q", code, edge)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after kill -9 of edge b, region-b viewers went to %s after %v", edge, time.Since(killed).Round(time.Millisecond))
	frames, hosts = playVia(t, viewerB, playback, 5*time.Second)
	t.Logf("region-b viewer after the kill: %d video frames in 5 s; requests by host: %v", frames, hosts)
	if frames < 50 || hosts[edgeB.HTTP] > 0 {
		t.Fatalf("after the kill: %d frames, %d requests to the dead edge", frames, hosts[edgeB.HTTP])
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestDirectorInServe: with director.enabled, serve answers viewers' multivariant requests as
// a director choosing its own edge, whose answer it fetches without asking itself again.
func TestDirectorInServe(t *testing.T) {
	a := startServe(t, "", "--director-enabled", "--node-name", "solo")
	c := a.ivsClient()
	ctx := ctxT(t, 2*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	publish(t, a.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)
	waitSegment(t, mediaPlaylistURL(*ch.PlaybackUrl))
	code, edge, body := askDirector(t, http.DefaultClient, *ch.PlaybackUrl)
	if code != 200 || edge != "solo" || !strings.Contains(body, "http://"+a.HTTP+"/api/video/v1/") {
		t.Fatalf("%d from %q:\n%s", code, edge, body)
	}
	if frames, _ := playVia(t, http.DefaultClient, *ch.PlaybackUrl, 4*time.Second); frames < 40 {
		t.Fatalf("decoded only %d frames in 4 s", frames)
	}
}

// TestDirectorIVSPlayer: Amazon's IVS web player and hls.js (the tutorial page) play a private
// channel whose playback URL names a separate director: the multivariant comes from the
// director with absolute URIs to the edge, every other request goes to the edge, cross-origin,
// with the edge's derived token; an offline channel is still ErrorNotAvailable 404.
func TestDirectorIVSPlayer(t *testing.T) {
	needBrowser(t)
	natsAddr, dirAddr := freePort(t), freePort(t)
	a := startServe(t, "", "--nats-listen", natsAddr, "--api-playback-base-url", "http://"+dirAddr, "--node-name", "serve-a")
	dir := &node{t: t, DataDir: t.TempDir(), HTTP: dirAddr}
	dir.args = []string{"director", "--data-dir", dir.DataDir, "--http-listen", dirAddr, "--https-listen", "",
		"--node-name", "director", "--log-level", "debug", "--nats-url", "nats://" + natsAddr}
	dir.args = append(dir.args, natsLogin(t, a)...)
	dir.start()
	t.Cleanup(dir.stop)
	c := a.ivsClient()
	ctx := ctxT(t, 3*time.Minute)
	offline, _ := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	priv, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true, Authorized: true})
	token := playbackToken(t, ctx, c, *priv.Arn)
	publish(t, a.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, priv.Arn)
	waitPlayable(t, *priv.PlaybackUrl+"?token="+token)

	rep := runIVSPlayer(t, *offline.PlaybackUrl, 8, false, nil)
	if e := rep.ivsError(); e == nil || e.Type != "ErrorNotAvailable" || e.Code != 404 {
		t.Fatalf("offline channel through the director: errors %+v, want ErrorNotAvailable 404", rep.Errors)
	}
	var ivsPlaying, hlsPlaying bool
	rep = runIVSPlayer(t, *priv.PlaybackUrl+"?token="+token, 20, false, func(s ivsSample) {
		if s.IVS != nil && s.IVS.State == "Playing" && s.IVS.Position > 2 {
			ivsPlaying = true
		}
		if s.HLS.CurrentTime > 2 {
			hlsPlaying = true
		}
	})
	if !ivsPlaying || !hlsPlaying || len(rep.Errors) != 0 {
		t.Fatalf("private channel through the director: IVS player playing %v, hls.js playing %v, errors %+v, states %+v",
			ivsPlaying, hlsPlaying, rep.Errors, rep.States)
	}
}
