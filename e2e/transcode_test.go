package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"glasscast/origin/llhlscheck"
)

// rendition is what a multivariant playlist says about one variant.
type rendition struct {
	name, uri, resolution, frameRate, codecs string
	bandwidth, average                       int
}

// ladder reads the multivariant playlist at playbackURL.
func ladder(t *testing.T, playbackURL string) []rendition {
	t.Helper()
	code, body := get(t, playbackURL)
	if code != 200 {
		t.Fatalf("multivariant playlist: %d %s", code, body)
	}
	m, err := llhlscheck.ParseMultivariant([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var out []rendition
	for _, v := range m.Variants {
		r := rendition{uri: resolveURL(t, playbackURL, v.URI), resolution: v.Attrs["RESOLUTION"],
			frameRate: v.Attrs["FRAME-RATE"], codecs: strings.Trim(v.Attrs["CODECS"], `"`)}
		r.bandwidth, _ = strconv.Atoi(v.Attrs["BANDWIDTH"])
		r.average, _ = strconv.Atoi(v.Attrs["AVERAGE-BANDWIDTH"])
		parts := strings.Split(strings.Split(v.URI, "?")[0], "/")
		r.name = parts[len(parts)-2]
		out = append(out, r)
	}
	return out
}

func resolveURL(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r.String()
}

func mediaPlaylist(t *testing.T, u string) *llhlscheck.MediaPlaylist {
	t.Helper()
	code, body := get(t, u)
	if code != 200 {
		t.Fatalf("%s: %d %s", u, code, body)
	}
	pl, err := llhlscheck.ParseMedia([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return pl
}

// children lists the processes whose parent is pid, zombies included, by command name.
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	out := map[int]string{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			name := string(stat[open+1 : end])
			if fields[0] == "Z" {
				name += " (zombie)"
			}
			out[child] = name
		}
	}
	return out
}

// transcoders returns the pids of the ffmpeg children of a glasscast process.
func (n *node) transcoders(t *testing.T) []int {
	t.Helper()
	var pids []int
	for pid, name := range children(t, n.cmd.Process.Pid) {
		if strings.HasPrefix(name, "ffmpeg") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestTranscodeLadder publishes the 720p30 test pattern to a STANDARD channel: the playback
// URL lists IVS's ladder below the source, every rendition decodes, all are aligned segment for
// segment, a player moves between them without a gap, killing ffmpeg leaves the stream playing
// (and is recorded in the session), and ending the stream leaves no ffmpeg behind.
func TestTranscodeLadder(t *testing.T) {
	n := startServe(t, "", "--ingest-reconnect-grace", "1s")
	c := n.ivsClient()
	ctx := ctxT(t, 4*time.Minute)
	ch, key := testChannel(t, ctx, c, &ivs.CreateChannelInput{Name: aws.String("ladder"), Type: types.ChannelTypeStandardChannelType, InsecureIngest: true})
	pub := publish(t, n.rtmpURL(key), pubOptions{})
	waitLive(t, ctx, c, ch.Arn)
	waitPlayable(t, *ch.PlaybackUrl)

	want := []struct{ name, resolution string }{
		{"source", "1280x720"}, {"480p30", "854x480"}, {"360p30", "640x360"}, {"160p30", "284x160"},
	}
	var rs []rendition
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs = ladder(t, *ch.PlaybackUrl)
		if len(rs) == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(rs) != len(want) {
		t.Fatalf("multivariant lists %d renditions: %+v", len(rs), rs)
	}
	for i, w := range want {
		r := rs[i]
		if r.name != w.name || r.resolution != w.resolution || r.frameRate != "30.000" ||
			!strings.HasPrefix(r.codecs, "avc1.") || !strings.HasSuffix(r.codecs, ",mp4a.40.2") ||
			r.bandwidth <= 0 || r.average <= 0 || r.average > r.bandwidth {
			t.Errorf("variant %d: %+v, want %s %s", i, r, w.name, w.resolution)
		}
		if i > 0 && r.bandwidth >= rs[i-1].bandwidth {
			t.Errorf("variant %s (%d b/s) not below %s (%d b/s)", r.name, r.bandwidth, rs[i-1].name, rs[i-1].bandwidth)
		}
	}
	time.Sleep(7 * time.Second) // a few complete segments in every rendition

	t.Run("aligned", func(t *testing.T) { checkAligned(t, rs) })
	t.Run("decodable", func(t *testing.T) {
		fellBack := func() bool {
			sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn})
			return err != nil || strings.Contains(strings.Join(eventNames(sess.StreamSession.TruncatedEvents), ","), "Transcoder Failure")
		}
		for _, r := range rs {
			checkDecodable(t, r, fellBack)
		}
	})
	t.Run("switching", func(t *testing.T) { checkSwitching(t, *ch.PlaybackUrl) })
	t.Run("ffmpeg killed", func(t *testing.T) {
		checkTranscoderKilled(t, ctx, n, c, ch.Arn, rs)
	})

	pub.stop()
	waitOffline(t, ctx, c, ch.Arn, 15*time.Second)
	deadline = time.Now().Add(10 * time.Second)
	for len(children(t, n.cmd.Process.Pid)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind by the ended stream: %v", children(t, n.cmd.Process.Pid))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range rs {
		if pl := mediaPlaylist(t, r.uri); !pl.Ended {
			t.Errorf("%s: no EXT-X-ENDLIST after the stream ended", r.name)
		}
	}
}

// checkAligned: the same MSNs in every rendition, starting at the same PDT (within 1 ms, as
// P17 demands) and lasting the same (within a frame); each playlist reports the others.
func checkAligned(t *testing.T, rs []rendition) {
	pls := make([]*llhlscheck.MediaPlaylist, len(rs))
	for i, r := range rs {
		pls[i] = mediaPlaylist(t, r.uri)
		if len(pls[i].Reports) != len(rs)-1 {
			t.Errorf("%s: %d rendition reports, want %d", r.name, len(pls[i].Reports), len(rs)-1)
		}
	}
	compared := 0
	cuts := make([]int, len(pls))
	for _, s := range pls[0].Segments {
		for i := 1; i < len(pls); i++ {
			o := pls[i].Segment(s.MSN)
			if o == nil || o.URI == "" {
				continue
			}
			compared++
			if d := o.PDT.Sub(s.PDT); d.Abs() > time.Millisecond {
				t.Errorf("%s segment %d starts %v after the source's", rs[i].name, s.MSN, d)
			}
			if d := o.Duration - s.Duration; d > 1.0/30 || d < -1.0/30 {
				// A transcoder that fails (on loaded cores: falls seconds behind) ends its
				// rendition's segment where its output stopped, and the source copy that follows
				// starts the next one with a discontinuity, on time. Two failovers at most.
				if next := pls[i].Segment(s.MSN + 1); d < 0 && next != nil && next.Discontinuity && cuts[i] < 2 {
					cuts[i]++
					t.Logf("%s segment %d lasts %.3f s, the source's %.3f s: cut short where its transcoder failed; the next starts a discontinuity",
						rs[i].name, s.MSN, o.Duration, s.Duration)
					continue
				}
				t.Errorf("%s segment %d lasts %.3f s, the source's %.3f s", rs[i].name, s.MSN, o.Duration, s.Duration)
			}
		}
	}
	if compared < 3*(len(rs)-1) {
		t.Errorf("only %d segments to compare", compared)
	}
}

// checkDecodable downloads a rendition's init and its two newest complete segments and decodes
// them with ffprobe. fellBack tells whether the transcoder failed so far (a loaded machine
// makes it fall behind), in which case the segments may be a copy of the source.
func checkDecodable(t *testing.T, r rendition, fellBack func() bool) {
	p := mediaPlaylist(t, r.uri)
	// The two newest complete segments of one init and timeline (a rendition that fell back
	// to the source for a while changes both).
	var segs []*llhlscheck.Segment
	for i := len(p.Segments) - 1; i > 0 && segs == nil; i-- {
		if a, b := p.Segments[i-1], p.Segments[i]; a.Map == b.Map && !b.Discontinuity {
			segs = []*llhlscheck.Segment{a, b}
		}
	}
	if segs == nil {
		t.Fatalf("%s: no two consecutive segments of one init in\n%s", r.name, p.Raw)
	}
	code, file := get(t, resolveURL(t, r.uri, segs[0].Map))
	if code != 200 {
		t.Fatalf("%s init: %d", r.name, code)
	}
	want := 0.0
	for _, s := range segs {
		code, seg := get(t, resolveURL(t, r.uri, s.URI))
		if code != 200 {
			t.Fatalf("%s segment %d: %d", r.name, s.MSN, code)
		}
		file += seg
		want += s.Duration * 30
	}
	path := filepath.Join(t.TempDir(), r.name+".mp4")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,width,height,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "rror") {
		t.Fatalf("%s does not decode: %v\n%s", r.name, err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "video,") || !strings.HasPrefix(lines[1], "audio,") {
		t.Fatalf("%s decodes as %q", r.name, out)
	}
	if !strings.HasPrefix(lines[0], "video,"+strings.Replace(r.resolution, "x", ",", 1)+",") &&
		!(fellBack() && strings.HasPrefix(lines[0], "video,1280,720,")) {
		t.Errorf("%s decodes as %q, want %s", r.name, lines[0], r.resolution)
	}
	if frames, _ := strconv.Atoi(strings.Split(lines[0], ",")[3]); float64(frames) < want-2 {
		t.Errorf("%s: %d frames in two segments lasting %.0f frames", r.name, frames, want)
	}
}

// checkSwitching plays the stream with gohlslib's client and moves it to another rendition
// every few seconds by rewriting its requests, as an ABR player does between aligned
// renditions. The frames it receives must continue at exactly one frame per 1/30 s, with no
// gap and no repeat, and the audio must stay continuous.
func checkSwitching(t *testing.T, playbackURL string) {
	order := []string{"source", "360p30", "160p30", "480p30"}
	var current atomic.Int32
	var videoDTS, audioPTS []int64
	var audioRate int
	c := &gohlslib.Client{URI: playbackURL}
	quiet := func(string) {}
	c.OnDownloadPrimaryPlaylist, c.OnDownloadStreamPlaylist, c.OnDownloadSegment, c.OnDownloadPart = quiet, quiet, quiet, quiet
	var mu sync.Mutex
	served := map[string]int{} // part requests per rendition, after the rewrite
	c.OnRequest = func(r *http.Request) {
		name := order[current.Load()]
		for _, from := range order {
			r.URL.Path = strings.Replace(r.URL.Path, "/"+from+"/", "/"+name+"/", 1)
		}
		if strings.Contains(r.URL.Path, "/part") {
			mu.Lock()
			served[name]++
			mu.Unlock()
		}
	}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				c.OnDataH26x(tr, func(_, dts int64, _ [][]byte) { videoDTS = append(videoDTS, dts) })
			case *codecs.MPEG4Audio:
				audioRate = tr.ClockRate
				c.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) { audioPTS = append(audioPTS, pts, int64(len(aus))) })
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Wait2() }()
	for i := 1; i < len(order); i++ {
		select {
		case err := <-errc:
			t.Fatalf("client stopped on %s: %v", order[i-1], err)
		case <-time.After(4 * time.Second):
		}
		current.Store(int32(i))
	}
	time.Sleep(4 * time.Second)
	c.Close()
	<-errc
	mu.Lock()
	for _, name := range order {
		if served[name] < 5 {
			t.Errorf("the client fetched %d parts of %s: %v", served[name], name, served)
		}
	}
	mu.Unlock()
	if len(videoDTS) < 300 {
		t.Fatalf("%d frames in 16 s", len(videoDTS))
	}
	for i := 1; i < len(videoDTS); i++ {
		if d := videoDTS[i] - videoDTS[i-1]; d < 2900 || d > 3100 {
			t.Fatalf("frame %d of %d: DTS step %d ticks, want 3000", i, len(videoDTS), d)
		}
	}
	// Each audio callback carries n AAC frames of 1024 samples; the next starts where it ends
	// (within a millisecond).
	for i := 2; i < len(audioPTS); i += 2 {
		want := audioPTS[i-2] + audioPTS[i-1]*1024 // pts in the audio clock rate
		if d := audioPTS[i] - want; d*1000 < -int64(audioRate) || d*1000 > int64(audioRate) {
			t.Fatalf("audio jumps by %d ticks at callback %d", d, i/2)
		}
	}
}

// checkTranscoderKilled kills the ffmpeg child mid-stream: every rendition keeps advancing (it
// follows the source until a new ffmpeg takes over), a new ffmpeg starts, and the session
// history records the failure and the recovery.
func checkTranscoderKilled(t *testing.T, ctx context.Context, n *node, c *ivs.Client, arn *string, rs []rendition) {
	// On a loaded machine ffmpeg may be between runs (it restarts when it falls behind).
	var pids []int
	deadline := time.Now().Add(20 * time.Second)
	for pids = n.transcoders(t); len(pids) != 1; pids = n.transcoders(t) {
		if time.Now().After(deadline) {
			t.Fatalf("ffmpeg children: %v", children(t, n.cmd.Process.Pid))
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := make([]uint64, len(rs))
	for i, r := range rs {
		before[i] = mediaPlaylist(t, r.uri).MaxMSN()
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Playback never stops: every rendition's playlist keeps growing, sampled every second.
	multivariant := rs[0].uri[:strings.LastIndex(rs[0].uri, "/source/")] + ".m3u8"
	for step := 0; step < 8; step++ {
		time.Sleep(time.Second)
		if code, _ := get(t, multivariant); code != 200 {
			t.Fatalf("playback URL answers %d %v after ffmpeg was killed", code, time.Duration(step+1)*time.Second)
		}
	}
	for i, r := range rs {
		if after := mediaPlaylist(t, r.uri).MaxMSN(); after < before[i]+3 {
			t.Errorf("%s advanced from segment %d to %d in 8 s after ffmpeg was killed", r.name, before[i], after)
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		if now := n.transcoders(t); len(now) == 1 && now[0] != pids[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new ffmpeg after the kill: %v", children(t, n.cmd.Process.Pid))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The session records the failure, then the recovery (events come newest first).
	for {
		sess, err := c.GetStreamSession(ctx, &ivs.GetStreamSessionInput{ChannelArn: arn})
		if err != nil {
			t.Fatal(err)
		}
		evs := sess.StreamSession.TruncatedEvents
		recovered := false
		for _, e := range evs {
			name := aws.ToString(e.Name)
			if name == "Transcoder Failure" && aws.ToString(e.Code) == "TranscoderExited" {
				break
			}
			recovered = recovered || name == "Transcoder Recovery"
		}
		if recovered && strings.Contains(strings.Join(eventNames(evs), ","), "Transcoder Failure/TranscoderExited") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session events lack the transcoder's failure and recovery: %v", eventNames(evs))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func eventNames(evs []types.StreamEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, aws.ToString(e.Name)+"/"+aws.ToString(e.Code))
	}
	return out
}
