package push_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/push"
)

// TestBatchEqualsSingleCalls: a batch (init and parts in one request) leaves the origin in the
// state the same calls made one by one do; a repeated batch is accepted as a retry; a batch
// with a part out of order is refused with the origin's error.
func TestBatchEqualsSingleCalls(t *testing.T) {
	remote := newRemote(t, push.HandlerConfig{Token: token})
	local := origin.New(origin.Config{DateRanges: true})
	defer local.Close()
	localSrv := httptest.NewServer(local)
	defer localSrv.Close()
	client := remote.client(push.ClientConfig{})
	defer client.CloseIdleConnections()

	ctx := context.Background()
	stream := media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second, PartTarget: 250 * time.Millisecond}
	lb, err := local.Open(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := client.Open(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	r := media.Rendition{Name: "r", Codecs: "avc1.64001f", Bandwidth: 1e6}
	objs := []media.Object{{Init: &r, InitData: []byte("init")}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		objs = append(objs, media.Object{Rendition: "r", Part: media.Part{MSN: uint64(i / 4), Index: i % 4, Duration: 250 * time.Millisecond,
			Independent: i%4 == 0, Last: i%4 == 3, ProgramDateTime: t0.Add(time.Duration(i) * 250 * time.Millisecond),
			Data: []byte(fmt.Sprintf("part %d", i)), Cues: []media.Cue{{ID: fmt.Sprint("cue", i), Time: t0, Text: "x"}}}})
	}
	for _, o := range objs {
		if o.Init != nil {
			err = lb.Init(ctx, *o.Init, o.InitData)
		} else {
			err = lb.Part(ctx, o.Rendition, o.Part)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	batcher, ok := rb.(media.Batcher)
	if !ok {
		t.Fatal("the push client's broadcast takes no batches")
	}
	if err := batcher.Batch(ctx, objs); err != nil {
		t.Fatal(err)
	}
	if err := batcher.Batch(ctx, objs); err != nil {
		t.Errorf("a repeated batch (a retry): %v", err)
	}
	base := media.PlaybackPrefix + media.PlaybackName("us-east-1", "0", "c") + "/r/"
	for _, f := range []string{"index.m3u8", "part1.2.m4s", "seg0.m4s", "init0.mp4"} {
		ls, lbody := fetch(t, localSrv.URL+base+f)
		rs, rbody := fetch(t, remote.playback.URL+base+f)
		if ls != http.StatusOK || rs != ls || !bytes.Equal(lbody, rbody) {
			t.Errorf("%s: local %d, remote %d\n%s\n---\n%s", f, ls, rs, lbody, rbody)
		}
	}
	bad := []media.Object{{Rendition: "r", Part: media.Part{MSN: 2, Index: 3, Duration: time.Millisecond, Data: []byte("x")}}, objs[1]}
	if err := batcher.Batch(ctx, bad); err == nil {
		t.Error("a batch with a part out of order was accepted")
	}
}
