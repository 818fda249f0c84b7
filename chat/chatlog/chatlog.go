// Package chatlog writes IVS Chat logging: every MESSAGE and EVENT of a room with logging
// configurations becomes one JSON record, sent to S3 (gzip JSON-lines objects), to files standing in
// for CloudWatch Logs, or to a JetStream stream standing in for Kinesis Data Firehose.
package chatlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go/jetstream"

	"glasscast/chat/wire"
	"glasscast/store"
)

// Config is where logs go.
type Config struct {
	Region, Account string
	// Dir is the folder of cloudWatchLogs destinations: <Dir>/<logGroupName>/<log stream>.log.
	Dir string
	// Stdout, when set, also receives every cloudWatchLogs record.
	Stdout io.Writer
	// S3 writes s3 destinations; nil keeps their records buffered (and logs why).
	S3 *s3.Client
	// FlushInterval is how often buffered S3 records are written as an object.
	FlushInterval time.Duration
	// MaxBuffer bounds the bytes of records waiting for S3; past it the oldest batches are dropped.
	MaxBuffer int64
}

// consumerName is the durable consumer every logger process shares: the stream hands each
// record to one of them, so a record is written once however many processes log.
const consumerName = "chat-logger"

// Record is one log line.
type Record struct {
	EventTimestamp string          `json:"event_timestamp"`
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload"`
	Version        string          `json:"version"`
}

// Logger reads the chat stream and writes records.
type Logger struct {
	cfg   Config
	store *store.Store
	js    jetstream.JetStream
	log   *slog.Logger
	files *fileSink
	s3    *s3Sink
	fh    *firehoseSink
}

// New returns a Logger.
func New(cfg Config, st *store.Store, js jetstream.JetStream, log *slog.Logger) *Logger {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 5 * time.Second
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = 64 << 20
	}
	return &Logger{cfg: cfg, store: st, js: js, log: log,
		files: &fileSink{dir: cfg.Dir, stdout: cfg.Stdout, open: map[string]*openFile{}},
		s3:    newS3Sink(cfg, log),
		fh:    &firehoseSink{js: js, repl: st.Replication, made: map[string]bool{}}}
}

// Run logs until ctx ends, then flushes what it holds.
func (l *Logger) Run(ctx context.Context) error {
	cons, err := l.js.CreateOrUpdateConsumer(ctx, wire.StreamName, jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "IVS Chat logging",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		MaxAckPending: 4096,
	})
	if err != nil {
		return fmt.Errorf("chat logger consumer: %w", err)
	}
	var mu sync.Mutex // Consume's callback is serial; the flusher shares the sinks
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		err := l.handle(ctx, m)
		mu.Unlock()
		if err != nil {
			l.log.Warn("chat log: record not written; will retry", "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("chat logger: %w", err)
	}
	defer cc.Stop()
	tick := time.NewTicker(l.cfg.FlushInterval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			cc.Stop()
			mu.Lock()
			l.files.closeAll()
			flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			l.s3.flush(flushCtx, true)
			cancel()
			mu.Unlock()
			return nil
		case <-tick.C:
			mu.Lock()
			l.files.closeAll()
			l.s3.flush(ctx, false)
			mu.Unlock()
		}
	}
}

func (l *Logger) handle(ctx context.Context, m jetstream.Msg) error {
	e := wire.Open(m.Headers(), m.Data())
	if e.Kind != wire.KindFrame && e.Kind != wire.KindDisconnect {
		return nil
	}
	roomID := wire.RoomOf(m.Subject())
	rm, ok := l.store.Rooms.Get(roomID)
	if !ok || len(rm.LoggingConfigurations) == 0 {
		return nil
	}
	ts := time.Now()
	if md, err := m.Metadata(); err == nil {
		ts = md.Timestamp
	}
	line, err := json.Marshal(Record{EventTimestamp: ts.UTC().Format("2006-01-02T15:04:05.000Z"), Type: e.FrameType, Payload: e.Data, Version: "1.0"})
	if err != nil {
		return nil // a frame that is not JSON cannot be logged, and retrying will not change it
	}
	line = append(line, '\n')
	var errs []error
	for _, id := range rm.LoggingConfigurations {
		c, ok := l.store.ChatLogging.Get(id)
		if !ok || c.State != "ACTIVE" {
			continue
		}
		switch {
		case c.S3Bucket != "":
			l.s3.add(c.S3Bucket, roomID, line, ts)
		case c.LogGroupName != "":
			errs = append(errs, l.files.write(c.LogGroupName, roomID, line))
		case c.DeliveryStreamName != "":
			errs = append(errs, l.fh.publish(ctx, c.DeliveryStreamName, line))
		}
	}
	return errors.Join(errs...)
}
