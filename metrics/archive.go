package metrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// recordedSubject carries seconds recorded per channel, once a second, from archives to the
// recorders.
const recordedSubject = "glasscast.metrics.recorded"

// RecordedSample is the media recorded for a channel during one second.
type RecordedSample struct {
	T         int64   `json:"t"`
	ChannelID string  `json:"channel"`
	Seconds   float64 `json:"seconds"`
}

// Recorded counts RecordedTime where recordings are written.
type Recorded struct {
	nc      *nats.Conn
	log     *slog.Logger
	seconds *prometheus.CounterVec

	mu      sync.Mutex
	pending map[string]time.Duration
}

// NewRecorded registers glasscast_recorded_seconds_total with reg; Run publishes.
func NewRecorded(nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*Recorded, error) {
	r := &Recorded{nc: nc, log: log, pending: map[string]time.Duration{},
		seconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glasscast_recorded_seconds_total",
			Help: "RecordedTime: seconds of media written to recordings, by channel."}, []string{"channel"})}
	if err := reg.Register(r.seconds); err != nil {
		return nil, err
	}
	return r, nil
}

// Add counts d of channel's media as recorded. It never blocks.
func (r *Recorded) Add(channelID string, d time.Duration) {
	if d <= 0 {
		return
	}
	r.seconds.WithLabelValues(channelID).Add(d.Seconds())
	r.mu.Lock()
	r.pending[channelID] += d
	r.mu.Unlock()
}

// Run publishes each second's recorded time until ctx ends.
func (r *Recorded) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			p := r.pending
			r.pending = map[string]time.Duration{}
			r.mu.Unlock()
			for ch, d := range p {
				b, err := json.Marshal(RecordedSample{T: now.Unix() - 1, ChannelID: ch, Seconds: d.Seconds()})
				if err == nil {
					err = r.nc.Publish(recordedSubject, b)
				}
				if err != nil {
					r.log.Debug("publish recorded time", "err", err)
				}
			}
		}
	}
}
