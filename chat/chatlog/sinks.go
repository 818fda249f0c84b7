package chatlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go/jetstream"

	"glasscast/auth"
	"glasscast/bus"
)

// fileSink writes cloudWatchLogs destinations as JSON-lines files: a folder per log group, a
// file per log stream (aws/IVSChatLogs/1.0/room_<id>), as CloudWatch names them.
type fileSink struct {
	dir    string
	stdout io.Writer
	open   map[string]*openFile
}

type openFile struct{ f *os.File }

// logGroupPath turns a log group name into a path under the log folder. Names may hold "/" (as
// CloudWatch's do) but never escape the folder.
func logGroupPath(group string) (string, error) {
	p := strings.TrimLeft(group, "/")
	if p == "" || !filepath.IsLocal(p) {
		return "", fmt.Errorf("log group %q does not name a folder inside the log folder", group)
	}
	return p, nil
}

func (s *fileSink) write(group, roomID string, line []byte) error {
	if s.stdout != nil {
		_, _ = s.stdout.Write(line)
	}
	if s.dir == "" {
		return nil
	}
	g, err := logGroupPath(group)
	if err != nil {
		return nil // not retryable; the API refuses such names
	}
	name := path.Join(g, "aws/IVSChatLogs/1.0", "room_"+roomID+".log")
	of, ok := s.open[name]
	if !ok {
		root, err := os.OpenRoot(s.dir)
		if err != nil {
			if err := os.MkdirAll(s.dir, 0o750); err != nil {
				return fmt.Errorf("chat log folder: %w", err)
			}
			if root, err = os.OpenRoot(s.dir); err != nil {
				return fmt.Errorf("chat log folder: %w", err)
			}
		}
		defer root.Close()
		if err := root.MkdirAll(path.Dir(name), 0o750); err != nil {
			return fmt.Errorf("chat log folder: %w", err)
		}
		f, err := root.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return fmt.Errorf("chat log file: %w", err)
		}
		of = &openFile{f: f}
		s.open[name] = of
	}
	if _, err := of.f.Write(line); err != nil {
		_ = of.f.Close()
		delete(s.open, name)
		return fmt.Errorf("chat log file: %w", err)
	}
	return nil
}

func (s *fileSink) closeAll() {
	for k, of := range s.open {
		_ = of.f.Close()
		delete(s.open, k)
	}
}

// firehoseSink appends records to a JetStream stream per delivery stream, which consumers read as
// they would a Firehose delivery stream.
type firehoseSink struct {
	js   jetstream.JetStream
	repl bus.Replication
	made map[string]bool
}

// FirehoseStream returns the JetStream stream and subject of a delivery stream name.
func FirehoseStream(deliveryStream string) (stream, subject string) {
	n := strings.NewReplacer(".", "_").Replace(deliveryStream)
	return n, "glasscast.firehose." + n
}

func (s *firehoseSink) publish(ctx context.Context, deliveryStream string, line []byte) error {
	stream, subject := FirehoseStream(deliveryStream)
	if !s.made[stream] {
		_, err := s.repl.CreateOrUpdateStream(ctx, s.js, jetstream.StreamConfig{Name: stream, Subjects: []string{subject},
			Description: "IVS Chat logs for delivery stream " + deliveryStream, Storage: jetstream.FileStorage,
			MaxAge: 24 * time.Hour, MaxBytes: 1 << 30, Discard: jetstream.DiscardOld})
		if err != nil {
			return fmt.Errorf("firehose stream %s: %w", stream, err)
		}
		s.made[stream] = true
	}
	if _, err := s.js.Publish(ctx, subject, bytes.TrimSuffix(line, []byte("\n"))); err != nil {
		return fmt.Errorf("firehose stream %s: %w", stream, err)
	}
	return nil
}

// s3Sink gathers records per bucket and room and writes them as gzip objects. An object that
// cannot be written stays queued and is retried: nothing is lost while S3 is briefly away, up to
// MaxBuffer bytes.
type s3Sink struct {
	cfg     Config
	log     *slog.Logger
	open    map[[2]string]*batch // (bucket, room) -> records not yet closed into an object
	pending []*batch             // closed batches waiting to be written, oldest first
	bytes   int64
	retryAt time.Time
	backoff time.Duration
}

type batch struct {
	bucket, room string
	first        time.Time
	buf          bytes.Buffer
	key          string
}

func newS3Sink(cfg Config, log *slog.Logger) *s3Sink {
	return &s3Sink{cfg: cfg, log: log, open: map[[2]string]*batch{}}
}

func (s *s3Sink) add(bucket, room string, line []byte, ts time.Time) {
	k := [2]string{bucket, room}
	b := s.open[k]
	if b == nil {
		b = &batch{bucket: bucket, room: room, first: ts}
		s.open[k] = b
	}
	b.buf.Write(line)
	s.bytes += int64(len(line))
	for s.bytes > s.cfg.MaxBuffer && len(s.pending) > 0 {
		old := s.pending[0]
		s.pending = s.pending[1:]
		s.bytes -= int64(old.buf.Len())
		s.log.Error("chat log: S3 buffer full; dropping the oldest records", "bucket", old.bucket, "room", old.room, "bytes", old.buf.Len())
	}
}

// objectKey follows IVS Chat's layout: AWSLogs/<account>/IVSChatLogs/1.0/<region>/room_<id>/
// <yyyy>/<mm>/<dd>/<hh>/<account>_IVSChatLogs_1.0_<region>_room_<id>_<time>_<random>.log.gz.
func (s *s3Sink) objectKey(b *batch) string {
	t := b.first.UTC()
	return fmt.Sprintf("AWSLogs/%s/IVSChatLogs/1.0/%s/room_%s/%s/%s_IVSChatLogs_1.0_%s_room_%s_%s_%s.log.gz",
		s.cfg.Account, s.cfg.Region, b.room, t.Format("2006/01/02/15"), s.cfg.Account, s.cfg.Region, b.room,
		t.Format("20060102T150405.000Z"), auth.RandomString(8, "abcdefghijklmnopqrstuvwxyz0123456789"))
}

// flush closes batches older than the interval (all when final) and writes what is pending.
func (s *s3Sink) flush(ctx context.Context, final bool) {
	now := time.Now()
	for k, b := range s.open {
		if final || now.Sub(b.first) >= s.cfg.FlushInterval {
			b.key = s.objectKey(b)
			s.pending = append(s.pending, b)
			delete(s.open, k)
		}
	}
	if len(s.pending) == 0 || (!final && now.Before(s.retryAt)) {
		return
	}
	if s.cfg.S3 == nil {
		s.log.Error("chat log: records for S3 are waiting, but no S3 endpoint is configured (archive.s3Endpoint)", "batches", len(s.pending))
		return
	}
	for len(s.pending) > 0 {
		b := s.pending[0]
		if err := s.put(ctx, b); err != nil {
			s.backoff = min(max(2*s.backoff, time.Second), time.Minute)
			s.retryAt = time.Now().Add(s.backoff)
			s.log.Warn("chat log: S3 write failed; will retry", "bucket", b.bucket, "key", b.key, "retryIn", s.backoff, "err", err)
			return
		}
		s.backoff = 0
		s.pending = s.pending[1:]
		s.bytes -= int64(b.buf.Len())
	}
}

func (s *s3Sink) put(ctx context.Context, b *batch) error {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(b.buf.Bytes())
	_ = w.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := s.cfg.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(b.key),
		Body: bytes.NewReader(gz.Bytes()), ContentType: aws.String("application/x-gzip"), ContentLength: aws.Int64(int64(gz.Len()))})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", b.bucket, b.key, err)
	}
	return nil
}
