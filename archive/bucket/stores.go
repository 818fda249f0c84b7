package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Bucket is a bucket on an S3 server.
type s3Bucket struct {
	c        *s3.Client
	name     string
	endpoint string
}

func (b *s3Bucket) Location() string {
	if b.endpoint == EndpointAWS {
		return "s3://" + b.name + " on AWS"
	}
	return "s3://" + b.name + " at " + b.endpoint
}

func (b *s3Bucket) Put(ctx context.Context, key string, body io.ReadSeeker, size int64) error {
	_, err := b.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.name),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(ContentType(key)),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", b.name, key, err)
	}
	return nil
}

func (b *s3Bucket) Check(ctx context.Context) error {
	if _, err := b.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.name)}); err != nil {
		return fmt.Errorf("bucket %s: %w", b.Location(), err)
	}
	return nil
}

// dir is a bucket kept as a local folder: <root>/<bucket>/<key>.
type dir struct {
	root, name string
}

func (d *dir) Location() string { return "folder " + filepath.Join(d.root, d.name) }

// path maps a key into the bucket folder, refusing any key that could leave it.
func (d *dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("key %q: %w", key, errBadKey)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return "", fmt.Errorf("key %q: %w", key, errBadKey)
		}
	}
	return filepath.Join(d.root, d.name, filepath.FromSlash(key)), nil
}

var errBadKey = errors.New("not a safe object key")

func (d *dir) Put(ctx context.Context, key string, body io.ReadSeeker, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return Permanent(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	// Written beside and renamed, so a reader never sees half an object.
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, io.LimitReader(body, size))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (d *dir) Check(ctx context.Context) error {
	p := filepath.Join(d.root, d.name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return Permanent(fmt.Errorf("bucket folder %s: %w", p, err))
	}
	return nil
}
