package metrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"glasscast/events"
)

// ingestSubject carries each live channel's input figures once a second, from the ingest that
// holds it to the recorders.
const ingestSubject = "glasscast.metrics.ingest"

// IngestSample is one second of a channel's input.
type IngestSample struct {
	T            int64   `json:"t"` // the second measured, Unix seconds
	ChannelID    string  `json:"channel"`
	StreamID     string  `json:"stream"`
	Health       string  `json:"health"`
	VideoBitrate float64 `json:"video"` // bits/s
	AudioBitrate float64 `json:"audio"` // bits/s
	OtherBitrate float64 `json:"other"` // bits/s of data messages (metadata)
	Framerate    float64 `json:"fps"`
	// KeyframeInterval is the media time between the last two key frames, seconds; 0 before
	// the second key frame.
	KeyframeInterval float64 `json:"kfi"`
	Video            bool    `json:"hasVideo"`
	Audio            bool    `json:"hasAudio"`
}

// Bitrate is IngestBitrate: video, audio and metadata.
func (s IngestSample) Bitrate() float64 { return s.VideoBitrate + s.AudioBitrate + s.OtherBitrate }

// IngestMeter measures one broadcast's input. The ingest calls it from the connection's
// reading goroutine for every message, and from its heartbeat for health.
type IngestMeter interface {
	Video(bytes int, keyframe bool, dts time.Duration)
	Audio(bytes int)
	Data(bytes int)
	Health(h string)
	// Part reports how long after its last sample a part reached the origin.
	Part(delay time.Duration)
	Close()
}

// IngestMeters opens a meter per broadcast.
type IngestMeters interface {
	Open(channelID, channelName, streamID string) IngestMeter
}

// IngestLimits are the limits whose breach is an IVS Limit Breach event.
type IngestLimits struct {
	// MaxBitrate is the most bits per second a stream should send, averaged over
	// limitWindow; 0 checks nothing. IVS allows 8.5 Mb/s.
	MaxBitrate float64
	// Events hears breaches; nil reports none.
	Events events.LimitEvents
}

// limitWindow is how many seconds a bit rate is averaged over before it counts as a breach:
// one key frame makes any stream exceed its average for a second.
const limitWindow = 5

// Ingest measures the broadcasts of one ingest: once a second it publishes each one's sample
// for the recorders and updates the Prometheus gauges of this process.
type Ingest struct {
	nc     *nats.Conn
	log    *slog.Logger
	limits IngestLimits

	mu     sync.Mutex
	meters map[*meter]struct{}

	videoBitrate, audioBitrate, bitrate, framerate, keyframe *prometheus.GaugeVec
	streams                                                  *prometheus.GaugeVec
	inputSeconds                                             *prometheus.CounterVec
	partDelay                                                *prometheus.HistogramVec
}

// NewIngest registers the ingest's metrics with reg; Run publishes.
func NewIngest(nc *nats.Conn, reg prometheus.Registerer, limits IngestLimits, log *slog.Logger) (*Ingest, error) {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"channel"})
	}
	in := &Ingest{nc: nc, log: log, limits: limits, meters: map[*meter]struct{}{},
		videoBitrate: gauge("glasscast_ingest_video_bitrate_bps", "IngestVideoBitrate: video bits per second received in the last second."),
		audioBitrate: gauge("glasscast_ingest_audio_bitrate_bps", "IngestAudioBitrate: audio bits per second received in the last second."),
		bitrate:      gauge("glasscast_ingest_bitrate_bps", "IngestBitrate: video, audio and metadata bits per second received in the last second."),
		framerate:    gauge("glasscast_ingest_framerate", "IngestFramerate: video frames received in the last second."),
		keyframe:     gauge("glasscast_keyframe_interval_seconds", "KeyframeInterval: media time between the last two key frames."),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "glasscast_concurrent_streams",
			Help: "ConcurrentStreams: live streams this ingest holds, by health."}, []string{"health"}),
		inputSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glasscast_live_input_seconds_total",
			Help: "LiveInputTime: seconds of live input received, by channel."}, []string{"channel"}),
		partDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "glasscast_ingest_part_delay_seconds",
			Help: "Time from a part's end (by program-date-time) to the part being held by the origin: the server's share of latency. " +
				"Negative for a part sent with its last frame, before that frame's time is over.",
			Buckets: []float64{-.05, -.025, 0, .01, .025, .05, .1, .15, .2, .3, .5, 1, 2, 5}}, []string{"channel"}),
	}
	for _, c := range []prometheus.Collector{in.videoBitrate, in.audioBitrate, in.bitrate, in.framerate, in.keyframe, in.streams, in.inputSeconds, in.partDelay} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, h := range healthValues() {
		in.streams.WithLabelValues(h)
	}
	return in, nil
}

// Open implements IngestMeters.
func (in *Ingest) Open(channelID, channelName, streamID string) IngestMeter {
	m := &meter{in: in, channel: channelID, name: channelName, stream: streamID, health: "HEALTHY"}
	in.mu.Lock()
	in.meters[m] = struct{}{}
	in.mu.Unlock()
	return m
}

// Run samples every meter at each wall-clock second until ctx ends.
func (in *Ingest) Run(ctx context.Context) {
	for {
		next := time.Now().Truncate(time.Second).Add(time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		in.sample(next.Add(-time.Second).Unix())
	}
}

func (in *Ingest) sample(sec int64) {
	in.mu.Lock()
	ms := make([]*meter, 0, len(in.meters))
	for m := range in.meters {
		ms = append(ms, m)
	}
	in.mu.Unlock()
	counts := map[string]float64{}
	for _, m := range ms {
		s, closed := m.take(sec)
		if closed {
			in.mu.Lock()
			delete(in.meters, m)
			in.mu.Unlock()
			for _, g := range []*prometheus.GaugeVec{in.videoBitrate, in.audioBitrate, in.bitrate, in.framerate, in.keyframe} {
				g.DeleteLabelValues(m.channel)
			}
			in.partDelay.DeleteLabelValues(m.channel)
			continue
		}
		counts[s.Health]++
		in.videoBitrate.WithLabelValues(s.ChannelID).Set(s.VideoBitrate)
		in.audioBitrate.WithLabelValues(s.ChannelID).Set(s.AudioBitrate)
		in.bitrate.WithLabelValues(s.ChannelID).Set(s.Bitrate())
		in.framerate.WithLabelValues(s.ChannelID).Set(s.Framerate)
		in.keyframe.WithLabelValues(s.ChannelID).Set(s.KeyframeInterval)
		in.inputSeconds.WithLabelValues(s.ChannelID).Add(1)
		in.checkLimits(m, s)
		b, err := json.Marshal(s)
		if err == nil {
			err = in.nc.Publish(ingestSubject, b)
		}
		if err != nil {
			in.log.Debug("publish ingest sample", "err", err)
		}
	}
	for _, h := range healthValues() {
		in.streams.WithLabelValues(h).Set(counts[h])
	}
}

// checkLimits reports a stream whose bit rate, averaged over limitWindow seconds, exceeds
// the limit: once per stream, as IVS does. Called from Run's goroutine only.
func (in *Ingest) checkLimits(m *meter, s IngestSample) {
	if in.limits.MaxBitrate <= 0 || in.limits.Events == nil || m.breached {
		return
	}
	m.recent = append(m.recent, s.Bitrate())
	if len(m.recent) > limitWindow {
		m.recent = m.recent[1:]
	}
	if len(m.recent) < limitWindow {
		return
	}
	var sum float64
	for _, v := range m.recent {
		sum += v
	}
	if avg := sum / limitWindow; avg > in.limits.MaxBitrate {
		m.breached = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in.limits.Events.LimitEvent(ctx, events.LimitChange{LimitName: "Ingest Bitrate", LimitValue: int64(in.limits.MaxBitrate),
			ExceededBy: int64(avg - in.limits.MaxBitrate), LimitUnit: "bits per second", ChannelID: m.channel, ChannelName: m.name,
			StreamID: m.stream, Time: time.Unix(s.T, 0)})
	}
}

// meter accumulates one broadcast's second.
type meter struct {
	in      *Ingest
	channel string
	name    string
	stream  string
	// Touched by Run's goroutine only.
	recent   []float64 // the last limitWindow bit rates
	breached bool

	mu           sync.Mutex
	video, audio int64 // bytes this second
	other        int64
	frames       int
	hasVideo     bool
	hasAudio     bool
	lastKey      time.Duration
	haveKey      bool
	keyInterval  time.Duration
	health       string
	closed       bool
}

func (m *meter) Video(n int, key bool, dts time.Duration) {
	m.mu.Lock()
	m.video += int64(n)
	m.frames++
	m.hasVideo = true
	if key {
		if m.haveKey && dts > m.lastKey {
			m.keyInterval = dts - m.lastKey
		}
		m.lastKey, m.haveKey = dts, true
	}
	m.mu.Unlock()
}

func (m *meter) Audio(n int) {
	m.mu.Lock()
	m.audio += int64(n)
	m.hasAudio = true
	m.mu.Unlock()
}

func (m *meter) Data(n int) {
	m.mu.Lock()
	m.other += int64(n)
	m.mu.Unlock()
}

func (m *meter) Health(h string) {
	m.mu.Lock()
	m.health = h
	m.mu.Unlock()
}

func (m *meter) Part(d time.Duration) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if !closed {
		m.in.partDelay.WithLabelValues(m.channel).Observe(d.Seconds())
	}
}

func (m *meter) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

// take returns the second's sample and starts the next.
func (m *meter) take(sec int64) (IngestSample, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return IngestSample{}, true
	}
	s := IngestSample{T: sec, ChannelID: m.channel, StreamID: m.stream, Health: m.health,
		VideoBitrate: float64(m.video * 8), AudioBitrate: float64(m.audio * 8), OtherBitrate: float64(m.other * 8),
		Framerate: float64(m.frames), KeyframeInterval: m.keyInterval.Seconds(), Video: m.hasVideo, Audio: m.hasAudio}
	m.video, m.audio, m.other, m.frames = 0, 0, 0, 0
	return s, false
}

// NopIngest measures nothing.
type NopIngest struct{}

// Open implements IngestMeters.
func (NopIngest) Open(string, string, string) IngestMeter { return nopMeter{} }

type nopMeter struct{}

func (nopMeter) Video(int, bool, time.Duration) {}
func (nopMeter) Audio(int)                      {}
func (nopMeter) Data(int)                       {}
func (nopMeter) Health(string)                  {}
func (nopMeter) Part(time.Duration)             {}
func (nopMeter) Close()                         {}
