package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// Agg is an aggregate of samples: what CloudWatch keeps per period (a statistic set). It is
// stored as a four-number array to keep records small.
type Agg struct{ Sum, Min, Max, N float64 }

// One returns the aggregate of a single sample.
func One(v float64) Agg { return Agg{v, v, v, 1} }

// Add merges b into a.
func (a *Agg) Add(b Agg) {
	if b.N == 0 {
		return
	}
	if a.N == 0 {
		*a = b
		return
	}
	a.Sum += b.Sum
	a.Min = math.Min(a.Min, b.Min)
	a.Max = math.Max(a.Max, b.Max)
	a.N += b.N
}

// MarshalJSON writes [sum,min,max,n].
func (a Agg) MarshalJSON() ([]byte, error) { return json.Marshal([4]float64{a.Sum, a.Min, a.Max, a.N}) }

// UnmarshalJSON reads [sum,min,max,n].
func (a *Agg) UnmarshalJSON(b []byte) error {
	var v [4]float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = Agg{v[0], v[1], v[2], v[3]}
	return nil
}

// Record holds one scope's series for one period: a channel's, or the account's. Series keys
// are a metric name, or "<metric>|<dimension>=<value>" for a sub-series (ConcurrentStreams by
// Health).
type Record struct {
	T int64          `json:"t"` // period start, Unix seconds
	S int64          `json:"s"` // period length, seconds
	M map[string]Agg `json:"m"`
}

// Account is the scope of account-wide series (no dimension).
const Account = "_account"

// Tier is one resolution with its retention: CloudWatch's (1 s for 3 h, 60 s for 15 days,
// 5 min for 63 days, 1 h for 455 days).
type Tier struct {
	Period    int64
	Retention time.Duration
}

// Tiers returns the tiers, finest first.
func Tiers() []Tier {
	return []Tier{{1, 3 * time.Hour}, {60, 15 * 24 * time.Hour}, {300, 63 * 24 * time.Hour}, {3600, 455 * 24 * time.Hour}}
}

func streamName(period int64) string {
	return "GLASSCAST_METRICS_" + strconv.FormatInt(period, 10) + "S"
}

func subject(period int64, scope string) string {
	return "glasscast.metrics.p" + strconv.FormatInt(period, 10) + "." + scope
}

// Store keeps records in one JetStream stream per tier, a subject per scope. A stream with a
// maximum age is exactly a retention tier: JetStream expires old records, keeps them on disk
// across restarts, replicates them in a cluster, and a start-time consumer reads a time range
// of one scope without an index of our own. Records are written with a message id, so
// several recorders (one per control process) store each period once.
type Store struct {
	js jetstream.JetStream
}

// OpenStore creates or updates the tier streams with repl's replicas and placement.
func OpenStore(ctx context.Context, js jetstream.JetStream, repl bus.Replication) (*Store, error) {
	for _, t := range Tiers() {
		_, err := repl.CreateOrUpdateStream(ctx, js, jetstream.StreamConfig{
			Name:        streamName(t.Period),
			Description: fmt.Sprintf("AWS/IVS metric aggregates, %d s periods", t.Period),
			Subjects:    []string{subject(t.Period, "*")},
			Storage:     jetstream.FileStorage,
			MaxAge:      t.Retention,
			Discard:     jetstream.DiscardOld,
			Duplicates:  10 * time.Minute,
		})
		if err != nil {
			return nil, fmt.Errorf("metrics stream %s: %w", streamName(t.Period), err)
		}
	}
	return &Store{js: js}, nil
}

// Write stores a record of scope.
func (s *Store) Write(ctx context.Context, scope string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject(r.S, scope), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s.%d.%d", scope, r.S, r.T))
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("write %d s metrics of %s: %w", r.S, scope, err)
	}
	return nil
}

// Read returns scope's records of the tier whose periods start in [from, to), oldest first.
// Records are published after their period ends, so the read starts at the stream time from.
func (s *Store) Read(ctx context.Context, period int64, scope string, from, to time.Time) ([]Record, error) {
	start := from
	cons, err := s.js.OrderedConsumer(ctx, streamName(period), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject(period, scope)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		// The server removes the consumer soon after this read: at the 5 min default, a
		// dashboard polling GetMetricData every few seconds piled up consumers until JetStream
		// refused new ones ("maximum consumers limit reached").
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	var out []Record
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return nil, fmt.Errorf("read metrics: %w", err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			var r Record
			if json.Unmarshal(m.Data(), &r) != nil {
				continue
			}
			if r.T >= from.Unix() && r.T < to.Unix() {
				out = append(out, r)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read metrics: %w", err)
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// Scopes lists the scopes with records in the tier: the channels with data within its
// retention, and Account.
func (s *Store) Scopes(ctx context.Context, period int64) ([]string, error) {
	st, err := s.js.Stream(ctx, streamName(period))
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject(period, "*")))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(info.State.Subjects))
	prefix := subject(period, "")
	for subj := range info.State.Subjects {
		out = append(out, strings.TrimPrefix(subj, prefix))
	}
	return out, nil
}
