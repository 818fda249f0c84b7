package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"glasscast/archive/bucket"
	"glasscast/archive/layout"
)

const recordingsUsage = `Usage:
  glasscast recordings list --bucket NAME [--channel-id ID] [config flags]
      every recording in the bucket (of one channel): prefix, status, start, duration
  glasscast recordings url  --bucket NAME --prefix PREFIX [--expires 1h] [config flags]
      where to play a recording: its master playlist's object URL, and presigned URLs
      of the master playlist and the event file

The bucket is reached as the archive role reaches it (archive.* options, --config file or
GLASSCAST_ARCHIVE_* variables).
`

// runRecordings lists and locates recordings, reading the buckets the archive writes.
func runRecordings(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "url") {
		fmt.Fprint(os.Stderr, recordingsUsage)
		return errors.New("want list or url")
	}
	cfg := defaultConfig()
	var bucketName, channelID, prefix string
	expires := time.Hour
	opts := append(cfg.options(),
		option{"bucket", "Bucket of the recordings.", &bucketName},
		option{"channelId", "Only this channel's recordings (the last part of its ARN).", &channelID},
		option{"prefix", "Key prefix of one recording (ivs/v1/...), as list prints it.", &prefix},
		option{"expires", "How long presigned URLs stay valid (at most 168h).", &expires})
	if err := load("recordings "+args[0], opts, args[1:]); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if bucketName == "" {
		return errors.New("--bucket is required")
	}
	stores, err := cfg.buckets()
	if err != nil {
		return err
	}
	r := newRecordingReader(cfg, stores, bucketName)
	if args[0] == "list" {
		base := "ivs/v1/" + cfg.Account + "/"
		if channelID != "" {
			base += channelID + "/"
		}
		return r.list(ctx, base, os.Stdout)
	}
	if prefix == "" {
		return errors.New("--prefix is required")
	}
	return r.urls(ctx, strings.TrimSuffix(prefix, "/"), expires, cfg, os.Stdout)
}

// localRecordings is the folder of buckets kept without S3.
func (c *Config) localRecordings() string {
	if c.Archive.LocalDir != "" {
		return c.Archive.LocalDir
	}
	return filepath.Join(c.DataDir, "recordings")
}

// newRecordingReader reads bucket where the archive writes it: on S3 or in the local folder.
func newRecordingReader(cfg *Config, stores *bucket.Stores, bucketName string) *recordingReader {
	r := &recordingReader{bucket: bucketName}
	if c, ok := stores.S3(bucketName); ok {
		r.s3 = c
	} else {
		r.dir = filepath.Join(cfg.localRecordings(), bucketName)
	}
	return r
}

// open returns an object's body, streamed.
func (r *recordingReader) open(ctx context.Context, key string) (io.ReadCloser, error) {
	if r.s3 == nil {
		return os.Open(filepath.Join(r.dir, filepath.FromSlash(key)))
	}
	out, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// recordingReader reads a bucket on S3 or in the local folder.
type recordingReader struct {
	bucket string
	s3     *s3.Client
	dir    string
}

// keys lists the keys under prefix.
func (r *recordingReader) keys(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	if r.s3 == nil {
		err := filepath.WalkDir(filepath.Join(r.dir, filepath.FromSlash(prefix)), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(r.dir, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		return out, err
	}
	p := s3.NewListObjectsV2Paginator(r.s3, &s3.ListObjectsV2Input{Bucket: aws.String(r.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", r.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	return out, nil
}

func (r *recordingReader) get(ctx context.Context, key string) ([]byte, error) {
	if r.s3 == nil {
		return os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(key)))
	}
	out, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(io.LimitReader(out.Body, 1<<20))
}

// list prints one line per recording, newest last, from its event files.
func (r *recordingReader) list(ctx context.Context, base string, w io.Writer) error {
	keys, err := r.keys(ctx, base)
	if err != nil {
		return err
	}
	events := map[string]string{} // prefix -> the most final event file
	for _, k := range keys {
		for _, name := range []string{layout.StartedEvent, layout.EndedEvent, layout.FailedEvent} {
			if p, ok := strings.CutSuffix(k, "/"+name); ok && (events[p] == "" || name != layout.StartedEvent) {
				events[p] = k
			}
		}
	}
	prefixes := make([]string, 0, len(events))
	for p := range events {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tSTATUS\tSTARTED\tDURATION\tRENDITIONS")
	for _, p := range prefixes {
		b, err := r.get(ctx, events[p])
		var e layout.EventFile
		if err == nil {
			err = json.Unmarshal(b, &e)
		}
		if err != nil {
			fmt.Fprintf(tw, "%s\tunreadable: %v\t\t\t\n", p, err)
			continue
		}
		dur := "recording"
		if d := e.Media.HLS.DurationMS; d != nil {
			dur = (time.Duration(*d) * time.Millisecond).String()
		}
		var rends []string
		for _, rd := range e.Media.HLS.Renditions {
			rends = append(rends, rd.Path)
		}
		fmt.Fprintf(tw, "%s/\t%s\t%s\t%s\t%s\n", p, e.RecordingStatus, e.RecordingStartedAt, dur, strings.Join(rends, ","))
	}
	return tw.Flush()
}

// urls prints where a recording plays from.
func (r *recordingReader) urls(ctx context.Context, prefix string, expires time.Duration, cfg *Config, w io.Writer) error {
	master := prefix + "/" + layout.HLSPath + "/" + layout.MasterPlaylist
	if r.s3 == nil {
		fmt.Fprintf(w, "master playlist (local file): %s\n", filepath.Join(r.dir, filepath.FromSlash(master)))
		return nil
	}
	if _, err := r.get(ctx, master); err != nil {
		return fmt.Errorf("no recording at %s: %w", prefix, err)
	}
	ep := cfg.Archive.S3Endpoint
	if m, err := parseBucketMap(cfg.Archive.S3Buckets); err == nil && m[r.bucket] != "" {
		ep = m[r.bucket]
	}
	if ep != "aws" {
		fmt.Fprintf(w, "master playlist (plays where the bucket allows public reads): %s/%s/%s\n", strings.TrimSuffix(ep, "/"), r.bucket, master)
	}
	ps := s3.NewPresignClient(r.s3, s3.WithPresignExpires(expires))
	for _, key := range []string{master, prefix + "/" + layout.EndedEvent} {
		req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "presigned %s (valid %v): %s\n", key[len(prefix)+1:], expires, req.URL)
	}
	fmt.Fprintln(w, "A presigned playlist's segments are fetched unsigned: play private recordings through a\nbucket policy or a CDN that can read the bucket (see README, \"Playing a recording\").")
	return nil
}
