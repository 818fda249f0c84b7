package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// RecorderConfig says where a recorder's figures come from.
type RecorderConfig struct {
	// Viewers returns the concurrent viewers of every channel, summed over edges with no
	// viewer counted twice (viewers.Counter.All).
	Viewers func() map[string]int64
	// Live returns the live channels with their health (from the live registrations).
	Live     func() map[string]string
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// Recorder turns each second's figures into records: the viewers it counts, the live
// registrations, and the samples ingests and archives publish. It writes a 1 s record per
// live channel and one for the account, and rolls them up into the 60 s, 5 min and 1 h tiers
// as periods close. Several recorders may run; the store keeps one record per period.
type Recorder struct {
	cfg   RecorderConfig
	store *Store
	nc    *nats.Conn
	log   *slog.Logger

	mu       sync.Mutex
	ingest   map[string]IngestSample      // latest per channel
	recorded map[string]map[int64]float64 // channel -> second -> seconds recorded

	bins     map[int64]map[string]*Record // period -> scope -> open bin
	replayed map[string]int64             // scope -> last second replayed at start-up
	viewed   map[string]bool              // channels in the views gauge; touched by Run's goroutine only

	views     *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	writes    *prometheus.CounterVec
}

// NewRecorder prepares a recorder; Run records.
func NewRecorder(st *Store, nc *nats.Conn, cfg RecorderConfig) (*Recorder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{cfg: cfg, store: st, nc: nc, log: cfg.Logger,
		ingest: map[string]IngestSample{}, recorded: map[string]map[int64]float64{},
		bins: map[int64]map[string]*Record{}, replayed: map[string]int64{}, viewed: map[string]bool{},
		views: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "glasscast_concurrent_views",
			Help: "ConcurrentViews: viewers of each live channel, over all edges."}, []string{"channel"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glasscast_live_delivered_seconds_total",
			Help: "LiveDeliveredTime: seconds of live video delivered to viewers, by channel."}, []string{"channel"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glasscast_metrics_records_written_total",
			Help: "Aggregate records written to the metrics store, by period (seconds) and result."}, []string{"period", "result"}),
	}
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{r.views, r.delivered, r.writes} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, t := range Tiers()[1:] {
		r.bins[t.Period] = map[string]*Record{}
	}
	return r, nil
}

// Run records until ctx ends.
func (r *Recorder) Run(ctx context.Context) error {
	subIngest, err := r.nc.Subscribe(ingestSubject, func(m *nats.Msg) {
		var s IngestSample
		if json.Unmarshal(m.Data, &s) != nil || s.ChannelID == "" {
			return
		}
		r.mu.Lock()
		if cur, ok := r.ingest[s.ChannelID]; !ok || s.T >= cur.T {
			r.ingest[s.ChannelID] = s
		}
		r.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("subscribe to ingest samples: %w", err)
	}
	defer func() { _ = subIngest.Unsubscribe() }()
	subRec, err := r.nc.Subscribe(recordedSubject, func(m *nats.Msg) {
		var s RecordedSample
		if json.Unmarshal(m.Data, &s) != nil || s.ChannelID == "" {
			return
		}
		r.mu.Lock()
		if r.recorded[s.ChannelID] == nil {
			r.recorded[s.ChannelID] = map[int64]float64{}
		}
		r.recorded[s.ChannelID][s.T] += s.Seconds
		r.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("subscribe to recorded time: %w", err)
	}
	defer func() { _ = subRec.Unsubscribe() }()

	if err := r.replay(ctx, time.Now()); err != nil && ctx.Err() == nil {
		r.log.Warn("metrics: could not resume this hour's aggregates", "err", err)
	}
	for {
		// Each second is recorded 1.5 s after it ends, once the ingests' samples for it
		// (published at the second's end) have arrived.
		next := time.Now().Truncate(time.Second).Add(1500 * time.Millisecond)
		if time.Until(next) <= 0 {
			next = next.Add(time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(next)):
		}
		sec := next.Truncate(time.Second).Unix() - 1
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r.tick(wctx, sec)
		cancel()
	}
}

// tick records second sec and closes the bins that ended with it.
func (r *Recorder) tick(ctx context.Context, sec int64) {
	recs := r.second(sec)
	for scope, rec := range recs {
		r.write(ctx, scope, rec)
		r.mu.Lock()
		if sec > r.replayed[scope] {
			r.accumulate(scope, rec)
		}
		r.mu.Unlock()
	}
	r.flush(ctx, sec+1)
}

// second builds the 1 s records of sec.
func (r *Recorder) second(sec int64) map[string]Record {
	live := map[string]string{}
	if r.cfg.Live != nil {
		live = r.cfg.Live()
	}
	viewers := map[string]int64{}
	if r.cfg.Viewers != nil {
		viewers = r.cfg.Viewers()
	}
	r.mu.Lock()
	ingest := make(map[string]IngestSample, len(r.ingest))
	for ch, s := range r.ingest {
		if sec-s.T > 3 {
			delete(r.ingest, ch) // the stream ended or its ingest stopped
			continue
		}
		ingest[ch] = s
	}
	recorded := map[string]float64{}
	for ch, m := range r.recorded {
		for t, v := range m {
			if t <= sec {
				recorded[ch] += v
				delete(m, t)
			}
		}
		if len(m) == 0 {
			delete(r.recorded, ch)
		}
	}
	r.mu.Unlock()

	out := map[string]Record{}
	acct := Record{T: sec, S: 1, M: map[string]Agg{}}
	add := func(rec Record, name string, v float64) {
		rec.M[name] = One(v)
		a := acct.M[name]
		a.Sum += v // account series sum the channels' values of the second
		a.Min, a.Max, a.N = a.Sum, a.Sum, 1
		acct.M[name] = a
	}
	health := map[string]float64{}
	for ch, h := range live {
		rec := Record{T: sec, S: 1, M: map[string]Agg{}}
		v := float64(viewers[ch])
		add(rec, ConcurrentViews, v)
		add(rec, LiveDeliveredTime, v)
		add(rec, LiveInputTime, 1)
		if s, ok := ingest[ch]; ok {
			if s.Video {
				add(rec, IngestVideoBitrate, s.VideoBitrate)
				add(rec, IngestFramerate, s.Framerate)
				if s.KeyframeInterval > 0 {
					rec.M[KeyframeInterval] = One(s.KeyframeInterval)
				}
			}
			if s.Audio {
				add(rec, IngestAudioBitrate, s.AudioBitrate)
			}
			add(rec, IngestBitrate, s.Bitrate())
		}
		if d, ok := recorded[ch]; ok {
			add(rec, RecordedTime, d)
		}
		switch h {
		case "HEALTHY", "STARVING":
		default:
			h = "UNKNOWN"
		}
		health[h]++
		out[ch] = rec
		r.views.WithLabelValues(ch).Set(v)
		r.viewed[ch] = true
		r.delivered.WithLabelValues(ch).Add(v)
	}
	// A recording outlives its stream by a few segments.
	for ch, d := range recorded {
		if _, ok := live[ch]; !ok {
			rec := Record{T: sec, S: 1, M: map[string]Agg{}}
			add(rec, RecordedTime, d)
			out[ch] = rec
		}
	}
	for ch := range r.viewed {
		if _, ok := live[ch]; !ok {
			r.views.DeleteLabelValues(ch)
			delete(r.viewed, ch)
		}
	}
	if len(live) > 0 {
		acct.M[ConcurrentStreams] = One(float64(len(live)))
		for _, h := range healthValues() {
			acct.M[ConcurrentStreams+"|"+DimHealth+"="+h] = One(health[h])
		}
		// ConcurrentViews is 0, not absent, while something is live.
		if _, ok := acct.M[ConcurrentViews]; !ok {
			acct.M[ConcurrentViews] = One(0)
		}
	}
	if len(acct.M) > 0 {
		out[Account] = acct
	}
	return out
}

func (r *Recorder) write(ctx context.Context, scope string, rec Record) {
	err := r.store.Write(ctx, scope, rec)
	result := "ok"
	if err != nil {
		result = "error"
		r.log.Warn("metrics: write record", "scope", scope, "period", rec.S, "err", err)
	}
	r.writes.WithLabelValues(fmt.Sprint(rec.S), result).Inc()
}

// accumulate adds a 1 s record into the open bins of every coarser tier. Caller holds mu.
func (r *Recorder) accumulate(scope string, rec Record) {
	for period, bins := range r.bins {
		start := rec.T - rec.T%period
		b := bins[scope]
		if b == nil || b.T != start {
			if b != nil && b.T > start {
				continue // a late second of a bin already written
			}
			b = &Record{T: start, S: period, M: map[string]Agg{}}
			bins[scope] = b
		}
		for k, a := range rec.M {
			cur := b.M[k]
			cur.Add(a)
			b.M[k] = cur
		}
	}
}

// flush writes the bins that end at or before now (Unix seconds).
func (r *Recorder) flush(ctx context.Context, now int64) {
	type pending struct {
		scope string
		rec   Record
	}
	var done []pending
	r.mu.Lock()
	for _, bins := range r.bins {
		for scope, b := range bins {
			if b.T+b.S <= now {
				done = append(done, pending{scope, *b})
				delete(bins, scope)
			}
		}
	}
	r.mu.Unlock()
	for _, p := range done {
		r.write(ctx, p.scope, p.rec)
	}
}

// replay rebuilds the open bins from the 1 s records already stored this hour, so a restart
// loses no part of the 60 s, 5 min and 1 h periods under way.
func (r *Recorder) replay(ctx context.Context, now time.Time) error {
	from := now.Truncate(time.Hour)
	start := from
	cons, err := r.store.js.OrderedConsumer(ctx, streamName(1), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject(1, "*")}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start})
	if err != nil {
		return err
	}
	prefix := subject(1, "")
	n := 0
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return err
		}
		got := 0
		var pending uint64
		for m := range batch.Messages() {
			got++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			var rec Record
			if json.Unmarshal(m.Data(), &rec) != nil || rec.T < from.Unix() {
				continue
			}
			scope := m.Subject()[len(prefix):]
			r.mu.Lock()
			if rec.T > r.replayed[scope] {
				r.accumulate(scope, rec)
				r.replayed[scope] = rec.T
			}
			r.mu.Unlock()
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if got == 0 || pending == 0 {
			break
		}
	}
	if n > 0 {
		r.log.Info("metrics: resumed this hour's aggregates", "seconds", n)
	}
	return nil
}
