package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"glasscast/bus"
	"glasscast/events"
)

// openBus starts a real embedded NATS server with JetStream in a temporary folder.
func openBus(t testing.TB) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "metrics-test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func openStore(t testing.TB, b *bus.Bus) *Store {
	t.Helper()
	st, err := OpenStore(context.Background(), b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestQueryStatisticsAndPeriods(t *testing.T) {
	b := openBus(t)
	st := openStore(t, b)
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	start := now.Add(-3 * time.Minute)
	// Three minutes of one channel at 1 s: views climb 0..179, bitrate constant.
	for i := int64(0); i < 180; i++ {
		sec := start.Unix() + i
		r := Record{T: sec, S: 1, M: map[string]Agg{ConcurrentViews: One(float64(i)), IngestVideoBitrate: One(2.5e6), LiveInputTime: One(1)}}
		if err := st.Write(ctx, "chan1", r); err != nil {
			t.Fatal(err)
		}
	}
	q := Query{Namespace: Namespace, Metric: ConcurrentViews, Dimensions: map[string]string{DimChannel: "chan1"}, Period: 60,
		Start: start, End: now}
	cases := []struct {
		stat string
		want []float64
	}{
		{"Maximum", []float64{59, 119, 179}},
		{"Minimum", []float64{0, 60, 120}},
		{"Average", []float64{29.5, 89.5, 149.5}},
		{"SampleCount", []float64{60, 60, 60}},
		{"Sum", []float64{1770, 5370, 8970}},
	}
	for _, c := range cases {
		q.Stat = c.stat
		s, err := st.Query(ctx, q, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Values) != 3 {
			t.Fatalf("%s: %d datapoints, want 3: %+v", c.stat, len(s.Values), s)
		}
		for i, v := range c.want {
			if s.Values[i] != v || !s.Timestamps[i].Equal(start.Add(time.Duration(i)*time.Minute)) {
				t.Errorf("%s[%d] = %v at %v, want %v at %v", c.stat, i, s.Values[i], s.Timestamps[i], v, start.Add(time.Duration(i)*time.Minute))
			}
		}
	}
	// The channel's ARN names it as well as its id; Track0 is the single track.
	q.Stat, q.Metric = "Sum", LiveInputTime
	q.Dimensions = map[string]string{DimChannel: "arn:aws:ivs:us-east-1:000000000000:channel/chan1"}
	if s, err := st.Query(ctx, q, now); err != nil || len(s.Values) != 3 || s.Values[0] != 60 {
		t.Fatalf("LiveInputTime by ARN: %+v %v", s, err)
	}
	q.Metric, q.Stat, q.Period = IngestVideoBitrate, "Average", 5
	q.Dimensions = map[string]string{DimChannel: "chan1", DimTrack: "Track0"}
	if s, err := st.Query(ctx, q, now); err != nil || len(s.Values) != 36 || s.Values[10] != 2.5e6 {
		t.Fatalf("IngestVideoBitrate by track at 5 s: %d values %v", len(s.Values), err)
	}
	q.Dimensions[DimTrack] = "Track1"
	if s, err := st.Query(ctx, q, now); err != nil || len(s.Values) != 0 {
		t.Fatalf("Track1 of a single-track stream: %+v %v", s, err)
	}
	// A dimension set the metric does not have is no data, not an error (as on CloudWatch).
	q.Dimensions = map[string]string{DimHealth: "HEALTHY"}
	if s, err := st.Query(ctx, q, now); err != nil || len(s.Values) != 0 {
		t.Fatalf("wrong dimensions: %+v %v", s, err)
	}
}

func TestQueryValidation(t *testing.T) {
	b := openBus(t)
	st := openStore(t, b)
	now := time.Now()
	base := Query{Namespace: Namespace, Metric: ConcurrentViews, Period: 60, Stat: "Average", Start: now.Add(-time.Hour), End: now}
	bad := map[string]func(q *Query){
		"period 7":            func(q *Query) { q.Period = 7 },
		"period 0":            func(q *Query) { q.Period = 0 },
		"p99":                 func(q *Query) { q.Stat = "p99" },
		"end before start":    func(q *Query) { q.End = q.Start.Add(-time.Second) },
		"1 s period, 1 d ago": func(q *Query) { q.Period, q.Start = 1, now.Add(-24*time.Hour) },
		"60 s period, 20 d":   func(q *Query) { q.Start = now.Add(-20 * 24 * time.Hour) },
		"300 s period, 100 d": func(q *Query) { q.Period, q.Start = 300, now.Add(-100*24*time.Hour) },
	}
	for name, mutate := range bad {
		q := base
		mutate(&q)
		_, err := st.Query(context.Background(), q, now)
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%s: want a ParamError, got %v", name, err)
		}
	}
	for _, p := range []int64{1, 5, 10, 30, 60, 300, 3600} {
		q := base
		q.Period = p
		if _, err := st.Query(context.Background(), q, now); err != nil {
			t.Errorf("period %d: %v", p, err)
		}
	}
}

// The recorder turns live channels, viewers and ingest samples into 1 s records, rolls them
// into 60 s records when the minute closes, and resumes the open minute after a restart.
func TestRecorderSecondsAndRollup(t *testing.T) {
	b := openBus(t)
	st := openStore(t, b)
	ctx := context.Background()
	views := map[string]int64{"chanA": 3}
	reg := prometheus.NewRegistry()
	rec, err := NewRecorder(st, b.Conn, RecorderConfig{
		Viewers:  func() map[string]int64 { return views },
		Live:     func() map[string]string { return map[string]string{"chanA": "HEALTHY", "chanB": "STARVING"} },
		Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	minute := time.Now().Truncate(time.Minute).Add(-10 * time.Minute).Unix()
	for i := int64(0); i < 30; i++ {
		rec.mu.Lock()
		rec.ingest["chanA"] = IngestSample{T: minute + i, ChannelID: "chanA", VideoBitrate: 2e6, AudioBitrate: 1.28e5, Framerate: 30,
			KeyframeInterval: 2, Video: true, Audio: true}
		rec.mu.Unlock()
		rec.tick(ctx, minute+i)
	}
	if v := testutil.ToFloat64(rec.views.WithLabelValues("chanA")); v != 3 {
		t.Fatalf("glasscast_concurrent_views = %v", v)
	}
	// A second recorder (a restart) replays the open minute, then finishes it.
	rec2, err := NewRecorder(st, b.Conn, RecorderConfig{
		Viewers: func() map[string]int64 { return views },
		Live:    func() map[string]string { return map[string]string{"chanA": "HEALTHY", "chanB": "STARVING"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec2.replay(ctx, time.Unix(minute, 0)); err != nil {
		t.Fatal(err)
	}
	for i := int64(30); i < 61; i++ {
		rec2.tick(ctx, minute+i)
	}
	now := time.Unix(minute+120, 0)
	q := Query{Namespace: Namespace, Metric: ConcurrentStreams, Dimensions: map[string]string{}, Period: 60, Stat: "Maximum",
		Start: time.Unix(minute, 0), End: time.Unix(minute+60, 0)}
	// Read the 60 s tier itself (as a query older than 3 h would) to see the rollup.
	recs, err := st.Read(ctx, 60, Account, q.Start, q.End)
	if err != nil || len(recs) != 1 {
		t.Fatalf("60 s account records: %+v %v", recs, err)
	}
	m := recs[0].M
	if a := m[ConcurrentStreams]; a.Max != 2 || a.N != 60 {
		t.Errorf("ConcurrentStreams minute = %+v, want max 2 over 60 samples", a)
	}
	if a := m[ConcurrentStreams+"|Health=STARVING"]; a.Sum != 60 {
		t.Errorf("ConcurrentStreams STARVING = %+v", a)
	}
	if a := m[LiveInputTime]; a.Sum != 120 {
		t.Errorf("LiveInputTime sum = %+v, want 120 s (two channels, 60 s)", a)
	}
	chA, err := st.Read(ctx, 60, "chanA", q.Start, q.End)
	if err != nil || len(chA) != 1 {
		t.Fatalf("60 s chanA records: %+v %v", chA, err)
	}
	if a := chA[0].M[IngestVideoBitrate]; a.N != 30 || a.Sum/a.N != 2e6 {
		t.Errorf("IngestVideoBitrate minute = %+v, want 30 samples of 2e6 (samples stop at second 30)", a)
	}
	if a := chA[0].M[ConcurrentViews]; a.Sum/a.N != 3 {
		t.Errorf("ConcurrentViews minute = %+v", a)
	}
	// The same question through Query, at 1 s resolution because it is recent.
	q.Dimensions, q.Metric, q.Stat = map[string]string{DimChannel: "chanA"}, LiveDeliveredTime, "Sum"
	s, err := st.Query(ctx, q, now)
	if err != nil || len(s.Values) != 1 || s.Values[0] != 180 {
		t.Fatalf("LiveDeliveredTime = %+v %v, want 180 viewer-seconds", s, err)
	}
	if ids, err := st.List(ctx, ListFilter{MetricName: ConcurrentViews}); err != nil || len(ids) != 3 {
		t.Fatalf("ListMetrics ConcurrentViews = %+v %v, want account + 2 channels", ids, err)
	}
}

// Samples published by an ingest's meters reach a recorder over NATS.
func TestIngestMeterSample(t *testing.T) {
	b := openBus(t)
	reg := prometheus.NewRegistry()
	breaches := make(chan events.LimitChange, 4)
	in, err := NewIngest(b.Conn, reg, IngestLimits{MaxBitrate: 2e6, Events: limitFunc(func(c events.LimitChange) { breaches <- c })},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan IngestSample, 1)
	sub, err := b.Conn.Subscribe(ingestSubject, func(m *nats.Msg) {
		var s IngestSample
		if json.Unmarshal(m.Data, &s) == nil {
			got <- s
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := in.Open("chanZ", "zed", "st-1")
	for i := 0; i < 30; i++ {
		m.Video(10000, i%15 == 0, time.Duration(i)*time.Second/15)
		m.Audio(500)
	}
	in.sample(100)
	var s IngestSample
	select {
	case s = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no sample published")
	}
	if s.VideoBitrate != 30*10000*8 || s.AudioBitrate != 30*500*8 || s.Framerate != 30 || math.Abs(s.KeyframeInterval-1) > 1e-9 || s.T != 100 {
		t.Fatalf("sample %+v", s)
	}
	if v := testutil.ToFloat64(in.videoBitrate.WithLabelValues("chanZ")); v != 2.4e6 {
		t.Fatalf("gauge %v", v)
	}
	// Five seconds above 2 Mb/s (2.4 Mb/s of video) are one breach, however long it lasts.
	for sec := int64(101); sec < 110; sec++ {
		for i := 0; i < 30; i++ {
			m.Video(10000, false, 0)
		}
		in.sample(sec)
	}
	if len(breaches) != 1 {
		t.Fatalf("%d limit breaches, want 1", len(breaches))
	}
	if c := <-breaches; c.LimitName != "Ingest Bitrate" || c.ChannelName != "zed" || c.ExceededBy < 300000 || c.LimitUnit != "bits per second" {
		t.Fatalf("breach %+v", c)
	}
	m.Close()
	in.sample(111)
	if n := testutil.CollectAndCount(in.videoBitrate); n != 0 {
		t.Fatalf("a closed meter's series must go: %d left", n)
	}
}

// BenchmarkQuery24h measures GetMetricData's store read for 24 h of 1-minute data of one
// channel (1440 records), the figure the issue asks for, and reports the store's disk use.
func BenchmarkQuery24h(b *testing.B) {
	bs := openBus(b)
	st := openStore(b, bs)
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	rec := Record{S: 60, M: map[string]Agg{}}
	for _, n := range []string{ConcurrentViews, IngestVideoBitrate, IngestAudioBitrate, IngestBitrate, IngestFramerate, KeyframeInterval, LiveInputTime, LiveDeliveredTime} {
		rec.M[n] = Agg{60 * 1234567.5, 1000000, 3000000, 60}
	}
	for i := 0; i < 1440; i++ {
		rec.T = now.Add(-24 * time.Hour).Add(time.Duration(i) * time.Minute).Unix()
		if err := st.Write(ctx, "chanBench123", rec); err != nil {
			b.Fatal(err)
		}
	}
	q := Query{Namespace: Namespace, Metric: ConcurrentViews, Dimensions: map[string]string{DimChannel: "chanBench123"}, Period: 60,
		Stat: "Average", Start: now.Add(-24 * time.Hour), End: now}
	// Start just inside the 60 s tier so the query reads it (1 s data would be older than 3 h).
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := st.Query(ctx, q, now)
		if err != nil || len(s.Values) != 1440 {
			b.Fatalf("%d values, %v", len(s.Values), err)
		}
	}
	b.StopTimer()
	stream, err := bs.JS.Stream(ctx, streamName(60))
	if err != nil {
		b.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(info.State.Bytes)/float64(info.State.Msgs), "stored-B/record")
}

// BenchmarkRecorderCost runs a recorder over 100 live channels for simulated seconds and
// reports what one live channel costs the metrics store: bytes written per second (disk per
// day is 86400 times that, plus the small 60 s, 5 min and 1 h tiers) and memory held.
func BenchmarkRecorderCost(b *testing.B) {
	const channels = 100
	bs := openBus(b)
	st := openStore(b, bs)
	ctx := context.Background()
	live := map[string]string{}
	views := map[string]int64{}
	for i := 0; i < channels; i++ {
		ch := fmt.Sprintf("chan%08d", i)
		live[ch], views[ch] = "HEALTHY", int64(i)
	}
	rec, err := NewRecorder(st, bs.Conn, RecorderConfig{Viewers: func() map[string]int64 { return views },
		Live: func() map[string]string { return live }})
	if err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sec := time.Now().Truncate(time.Hour).Add(-2 * time.Hour).Unix()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.mu.Lock()
		for ch := range live {
			rec.ingest[ch] = IngestSample{T: sec, ChannelID: ch, VideoBitrate: 2.5e6, AudioBitrate: 1.28e5, Framerate: 30,
				KeyframeInterval: 2, Video: true, Audio: true}
		}
		rec.mu.Unlock()
		rec.tick(ctx, sec)
		sec++
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	var bytes1s, bytesRollup uint64
	for _, t := range Tiers() {
		s, err := bs.JS.Stream(ctx, streamName(t.Period))
		if err != nil {
			b.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if t.Period == 1 {
			bytes1s = info.State.Bytes
		} else {
			bytesRollup += info.State.Bytes
		}
	}
	b.ReportMetric(float64(bytes1s)/float64(b.N)/channels, "1s-tier-B/channel-second")
	b.ReportMetric(float64(bytesRollup)/float64(b.N)/channels, "rollup-B/channel-second")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/channels, "heap-B/channel")
}

type limitFunc func(events.LimitChange)

func (f limitFunc) LimitEvent(_ context.Context, c events.LimitChange) { f(c) }
