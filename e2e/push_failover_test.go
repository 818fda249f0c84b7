package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"glasscast/store"
)

// cutProxy is a TCP proxy that can cut its link: cut closes every connection and refuses new
// ones (a WAN link that went away) until restore.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(u, c)
		go pipe(c, u)
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// liveWatch records every revision of a channel's live registration, read straight from
// NATS KV as edges and the API see it.
type liveWatch struct {
	mu   sync.Mutex
	seen []store.Live
}

func watchLive(t *testing.T, ctx context.Context, natsAddr string, login nats.Option, channelID string) *liveWatch {
	t.Helper()
	nc, err := nats.Connect("nats://"+natsAddr, login)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "glasscast_live")
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, channelID)
	if err != nil {
		t.Fatal(err)
	}
	lw := &liveWatch{}
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var l store.Live
			if json.Unmarshal(e.Value(), &l) == nil {
				lw.mu.Lock()
				lw.seen = append(lw.seen, l)
				lw.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = w.Stop() })
	return lw
}

// states returns the distinct successive states the registration gave origin url.
func (lw *liveWatch) states(url string) []string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	var out []string
	for _, l := range lw.seen {
		for _, s := range l.OriginStates {
			if s.URL == url && (len(out) == 0 || out[len(out)-1] != s.State) {
				out = append(out, s.State)
			}
		}
	}
	return out
}

func (lw *liveWatch) last() (store.Live, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.seen) == 0 {
		return store.Live{}, false
	}
	return lw.seen[len(lw.seen)-1], true
}

// originMediaURL finds the first media playlist of a channel on an origin.
func originMediaURL(ctx context.Context, base, channelID string) (string, error) {
	name := fmt.Sprintf("/api/video/v1/%s.%s.channel.%s", testRegion, testAccount, channelID)
	body, status, err := getStatus(ctx, base+name+".m3u8")
	if err != nil || status != http.StatusOK {
		return "", fmt.Errorf("multivariant: %d %v", status, err)
	}
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			// Relative to the multivariant playlist's folder.
			return base + "/api/video/v1/" + strings.TrimPrefix(line, "./"), nil
		}
	}
	return "", fmt.Errorf("no media playlist in\n%s", body)
}

func getStatus(ctx context.Context, u string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	b, err := readAll(resp)
	return string(b), resp.StatusCode, err
}

var partRE = regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="part(\d+)\.(\d+)\.m4s`)

// lastPart is the newest part a media playlist lists, as one number (msn*1000 + index).
func lastPart(playlist string) int64 {
	m := partRE.FindAllStringSubmatch(playlist, -1)
	if len(m) == 0 {
		return -1
	}
	msn, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	idx, _ := strconv.ParseInt(m[len(m)-1][2], 10, 64)
	return msn*1000 + idx
}

// TestPushOriginCutAndResync: an ingest pushes to two origin processes, the second behind a
// link that is cut for 10 s. The near origin keeps receiving parts during the cut; the far one
// comes back within a few seconds of the end of the cut without the broadcaster reconnecting,
// its playlist marks what it missed with EXT-X-GAP, and the live registration shows its state
// going down → catching-up → in-sync.
func TestPushOriginCutAndResync(t *testing.T) {
	natsAddr := freePort(t)
	ctl := startServe(t, "", "--nats-listen", natsAddr)
	c := ctl.ivsClient()
	ctx := ctxT(t, 4*time.Minute)
	join := append([]string{"--nats-url", "nats://" + natsAddr}, natsLogin(t, ctl)...)
	o1Addr, o2Addr := freePort(t), freePort(t)
	startRole(t, "origin", append(join, "--origin-listen", o1Addr)...)
	startRole(t, "origin", append(join, "--origin-listen", o2Addr)...)
	link := newCutProxy(t, o2Addr)
	near, far := "http://"+o1Addr, "http://"+link.addr()
	rtmp := freePort(t)
	startRole(t, "ingest", append(join, "--ingest-origin-urls", near+","+far, "--ingest-rtmp-listen", rtmp,
		"--ingest-rtmps-listen", "", "--ingest-push-retry-max", "2s")...)

	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, InsecureIngest: true})
	channelID := (*ch.Arn)[strings.LastIndex(*ch.Arn, "/")+1:]
	lw := watchLive(t, ctx, natsAddr, natsLoginOption(t, ctl), channelID)
	publish(t, "rtmp://"+rtmp+"/app/"+key, pubOptions{Size: "640x360"})
	waitLive(t, ctx, c, ch.Arn)

	var nearURL, farURL string
	deadline := time.Now().Add(30 * time.Second)
	for nearURL == "" || farURL == "" {
		if time.Now().After(deadline) {
			t.Fatalf("origins never served the stream")
		}
		nearURL, _ = originMediaURL(ctx, near, channelID)
		farURL, _ = originMediaURL(ctx, "http://"+o2Addr, channelID)
		time.Sleep(200 * time.Millisecond)
	}
	waitState(t, lw, far, store.OriginInSync, 20*time.Second)

	playlist := func(u string) string {
		body, _, _ := getStatus(ctx, u)
		return body
	}
	link.setCut(true)
	cutAt := time.Now()
	farAtCut := lastPart(playlist(farURL))
	nearAtCut := lastPart(playlist(nearURL))
	waitState(t, lw, far, store.OriginDown, 20*time.Second)
	time.Sleep(10*time.Second - time.Since(cutAt))
	nearAtRestore := lastPart(playlist(nearURL))
	if nearAtRestore <= nearAtCut+2000 {
		t.Fatalf("the near origin stalled during the cut: part %d at the cut, %d 10 s later", nearAtCut, nearAtRestore)
	}
	link.setCut(false)
	restored := time.Now()

	// The far origin serves parts newer than any it had before the cut.
	var back time.Duration
	for {
		if pl := playlist(farURL); lastPart(pl) > nearAtRestore {
			back = time.Since(restored)
			if !strings.Contains(pl, "#EXT-X-GAP") {
				t.Errorf("the far origin's playlist does not mark the missed segments:\n%s", pl)
			}
			break
		}
		if time.Since(restored) > 30*time.Second {
			t.Fatalf("the far origin did not come back within 30 s of the end of the cut (last part %d, %d before the cut)\n%s",
				lastPart(playlist(farURL)), farAtCut, playlist(farURL))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("far origin served new parts %.2f s after the end of a 10 s cut", back.Seconds())
	waitState(t, lw, far, store.OriginInSync, 30*time.Second)

	got := lw.states(far)
	want := []string{store.OriginDown, store.OriginCatchingUp, store.OriginInSync}
	if !containsInOrder(got, want) {
		t.Fatalf("far origin states %v, want %v in order", got, want)
	}
	if l, _ := lw.last(); len(l.Origins) != 2 || len(l.OriginStates) != 2 || l.OriginStates[0].State != store.OriginInSync {
		t.Errorf("registration %+v", l)
	}
	for _, s := range lw.states(near) {
		if s == store.OriginDown {
			t.Errorf("near origin states %v: it was never cut", lw.states(near))
		}
	}
}

func waitState(t *testing.T, lw *liveWatch, url, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if l, ok := lw.last(); ok {
			for _, s := range l.OriginStates {
				if s.URL == url && s.State == state {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin %s never %s: states %v", url, state, lw.states(url))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// containsInOrder reports whether want occurs in got as a contiguous run.
func containsInOrder(got, want []string) bool {
	for i := 0; i+len(want) <= len(got); i++ {
		ok := true
		for j := range want {
			if got[i+j] != want[j] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
