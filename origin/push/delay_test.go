package push_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"glasscast/media"
	"glasscast/origin"
	"glasscast/origin/push"
)

// delayLine is a TCP proxy that delivers every byte oneWay after it arrived, in each direction:
// a WAN link's latency, without a bandwidth limit.
type delayLine struct {
	ln     net.Listener
	target string
	oneWay time.Duration
}

func newDelayLine(t testing.TB, target string, oneWay time.Duration) *delayLine {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &delayLine{ln: ln, target: target, oneWay: oneWay}
	t.Cleanup(func() { ln.Close() })
	go d.serve()
	return d
}

func (d *delayLine) serve() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", d.target)
		if err != nil {
			c.Close()
			continue
		}
		go d.pipe(u, c)
		go d.pipe(c, u)
	}
}

type chunk struct {
	at   time.Time
	data []byte
}

func (d *delayLine) pipe(dst, src net.Conn) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(d.oneWay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range q {
	}
}

// stampSink records when each part reached the origin behind it.
type stampSink struct {
	media.Sink
	mu      sync.Mutex
	arrived map[uint64]time.Time // by msn*100+index
}

func (s *stampSink) Open(ctx context.Context, st media.Stream) (media.Broadcast, error) {
	bc, err := s.Sink.Open(ctx, st)
	return &stampBroadcast{Broadcast: bc, s: s}, err
}

type stampBroadcast struct {
	media.Broadcast
	s *stampSink
}

// Batch passes batches on to a sink that takes them (the push client).
func (b *stampBroadcast) Batch(ctx context.Context, objs []media.Object) error {
	var err error
	if bb, ok := b.Broadcast.(media.Batcher); ok {
		err = bb.Batch(ctx, objs)
	} else {
		for _, o := range objs {
			if o.Init != nil {
				err = b.Broadcast.Init(ctx, *o.Init, o.InitData)
			} else {
				err = b.Broadcast.Part(ctx, o.Rendition, o.Part)
			}
			if err != nil {
				break
			}
		}
	}
	now := time.Now()
	b.s.mu.Lock()
	for _, o := range objs {
		if o.Init == nil {
			b.s.arrived[o.Part.MSN*100+uint64(o.Part.Index)] = now
		}
	}
	b.s.mu.Unlock()
	return err
}

func (b *stampBroadcast) Part(ctx context.Context, rendition string, p media.Part) error {
	err := b.Broadcast.Part(ctx, rendition, p)
	b.s.mu.Lock()
	b.s.arrived[p.MSN*100+uint64(p.Index)] = time.Now()
	b.s.mu.Unlock()
	return err
}

// TestPartDelayWithFarOrigin measures how long a part takes to reach a near origin (in the
// same process) and a far one (push over HTTP through a delay line) when the ingest feeds both
// through a media.Tee, parts made every 200 ms in real time. It is a measurement, not an
// assertion: set GLASSCAST_DELAY_FIGURES=1 to run it (go test -run TestPartDelayWithFarOrigin
// -v ./origin/push/).
func TestPartDelayWithFarOrigin(t *testing.T) {
	if os.Getenv("GLASSCAST_DELAY_FIGURES") == "" {
		t.Skip("a measurement; set GLASSCAST_DELAY_FIGURES=1")
	}
	for _, oneWay := range []time.Duration{0, 150 * time.Millisecond} {
		near, far := measureDelays(t, oneWay, 75)
		t.Logf("far origin %v one way: near p50 %v p99 %v; far p50 %v p99 %v", oneWay,
			pct(near, 50), pct(near, 99), pct(far, 50), pct(far, 99))
	}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return -1
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Millisecond)
}

func measureDelays(t *testing.T, oneWay time.Duration, parts int) (near, far []time.Duration) {
	nearOrigin := origin.New(origin.Config{})
	farOrigin := origin.New(origin.Config{})
	defer nearOrigin.Close()
	defer farOrigin.Close()
	srv := httptest.NewServer(push.NewHandler(farOrigin, push.HandlerConfig{Token: token}))
	defer srv.Close()
	line := newDelayLine(t, strings.TrimPrefix(srv.URL, "http://"), oneWay)
	client := push.NewClient(push.ClientConfig{URL: "http://" + line.ln.Addr().String(), Token: token, Retries: 1})
	defer client.CloseIdleConnections()

	ns := &stampSink{Sink: nearOrigin, arrived: map[uint64]time.Time{}}
	fs := &stampSink{Sink: client, arrived: map[uint64]time.Time{}}
	tee := media.NewTee(media.TeeConfig{}, media.TeeSink{Name: "near", Sink: ns}, media.TeeSink{Name: "far", Sink: fs})
	ctx := context.Background()
	bc, err := tee.Open(ctx, media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: 2 * time.Second, PartTarget: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Init(ctx, media.Rendition{Name: "source", Codecs: "avc1.64001f", Bandwidth: 2e6}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	made := map[uint64]time.Time{}
	start := time.Now()
	for i := range parts {
		at := start.Add(time.Duration(i) * 200 * time.Millisecond)
		time.Sleep(time.Until(at))
		msn, idx := uint64(i/10), i%10
		p := media.Part{MSN: msn, Index: idx, Duration: 200 * time.Millisecond, Independent: idx == 0, Last: idx == 9,
			ProgramDateTime: at, Data: make([]byte, 50<<10)} // 2 Mb/s
		made[msn*100+uint64(idx)] = at
		if err := bc.Part(ctx, "source", p); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = bc.Close(cctx)
	for k, at := range made {
		if a, ok := ns.arrived[k]; ok {
			near = append(near, a.Sub(at))
		}
		if a, ok := fs.arrived[k]; ok {
			far = append(far, a.Sub(at))
		}
	}
	_ = io.EOF
	return near, far
}
