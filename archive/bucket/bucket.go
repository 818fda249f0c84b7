// Package bucket writes a recording's objects where its configuration points: an S3 bucket on
// any S3-compatible server (AWS, MinIO, Ceph, versitygw, ...), chosen per bucket name, or a local
// folder laid out like a bucket when no S3 server is configured.
package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Store is one bucket.
type Store interface {
	// Put writes an object whole.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64) error
	// Check reports whether the bucket exists and answers; a Permanent error means it never will
	// without a change of configuration.
	Check(ctx context.Context) error
	// Location describes the bucket for logs and messages ("s3://name at http://host").
	Location() string
}

// Endpoint values with a meaning of their own.
const (
	// EndpointAWS uses AWS S3's own regional endpoint.
	EndpointAWS = "aws"
)

// Config says how to reach buckets.
type Config struct {
	// Endpoint is the S3 endpoint URL for buckets that Buckets does not name: EndpointAWS, a
	// URL, or empty to write recordings into LocalDir instead.
	Endpoint string
	// Buckets maps bucket names to their own endpoint (a URL or EndpointAWS).
	Buckets         map[string]string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle addresses buckets as http://host/bucket/key rather than http://bucket.host/key,
	// which most self-hosted servers need.
	PathStyle bool
	// LocalDir holds one folder per bucket when no endpoint applies.
	LocalDir string
	// HTTPClient is used for S3 requests; nil uses a default client.
	HTTPClient *http.Client
}

// Stores opens buckets by name, sharing one S3 client per endpoint.
type Stores struct {
	cfg     Config
	mu      sync.Mutex
	clients map[string]*s3.Client
}

// New checks cfg and returns the stores it describes.
func New(cfg Config) (*Stores, error) {
	for name, ep := range cfg.Buckets {
		if err := checkEndpoint(ep); err != nil || ep == "" {
			return nil, fmt.Errorf("bucket %s: endpoint %q: must be a http(s) URL or %q", name, ep, EndpointAWS)
		}
	}
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("s3 endpoint %q: %w", cfg.Endpoint, err)
		}
	}
	if cfg.AccessKeyID == "" && cfg.SecretAccessKey == "" {
		// The variables every S3 tool reads, so an operator can share one setting.
		cfg.AccessKeyID, cfg.SecretAccessKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return &Stores{cfg: cfg, clients: map[string]*s3.Client{}}, nil
}

func checkEndpoint(ep string) error {
	if ep == "" || ep == EndpointAWS {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not a http(s) URL")
	}
	return nil
}

// Local reports whether bucket name is written to the local folder rather than S3.
func (s *Stores) Local(name string) bool {
	_, mapped := s.cfg.Buckets[name]
	return !mapped && s.cfg.Endpoint == ""
}

// Open returns the store of bucket name.
func (s *Stores) Open(name string) (Store, error) {
	if !ValidName(name) {
		return nil, Permanent(fmt.Errorf("bucket name %q is not a valid S3 bucket name", name))
	}
	if s.Local(name) {
		return &dir{root: s.cfg.LocalDir, name: name}, nil
	}
	c, ep := s.client(name)
	return &s3Bucket{c: c, name: name, endpoint: ep}, nil
}

// S3 returns the S3 client and bucket for name, for tools that read recordings back; ok is false
// when the bucket is a local folder.
func (s *Stores) S3(name string) (c *s3.Client, ok bool) {
	if s.Local(name) {
		return nil, false
	}
	c, _ = s.client(name)
	return c, true
}

func (s *Stores) client(name string) (*s3.Client, string) {
	ep, ok := s.cfg.Buckets[name]
	if !ok {
		ep = s.cfg.Endpoint
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[ep]; c != nil {
		return c, ep
	}
	o := s3.Options{
		Region:       s.cfg.Region,
		UsePathStyle: s.cfg.PathStyle,
		// Checksums only where S3 requires them: many S3-compatible servers reject the
		// trailing checksums the SDK otherwise adds to every upload.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		// The spool retries with its own backoff; the SDK's retries would only hide outages.
		RetryMaxAttempts: 1,
	}
	if s.cfg.HTTPClient != nil {
		o.HTTPClient = s.cfg.HTTPClient
	}
	if ep != EndpointAWS {
		o.BaseEndpoint = aws.String(ep)
	}
	if s.cfg.AccessKeyID != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(s.cfg.AccessKeyID, s.cfg.SecretAccessKey, "")
	} else {
		o.Credentials = aws.AnonymousCredentials{}
	}
	c := s3.New(o)
	s.clients[ep] = c
	return c, ep
}

// ValidName accepts S3's bucket naming rules: 3-63 of [a-z0-9.-], starting and ending with a
// letter or digit, no "..". IVS's own check is looser; this one also keeps a name from ever
// meaning a parent folder.
func ValidName(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	return alnum(name[0]) && alnum(name[len(name)-1])
}

// ContentType is the Content-Type an object of the recording layout is stored with.
func ContentType(key string) string {
	switch path.Ext(key) {
	case ".m3u8":
		return "application/x-mpegURL"
	case ".ts":
		return "video/MP2T"
	case ".jpg":
		return "image/jpeg"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err as one that retrying cannot fix.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err cannot be fixed by retrying: a missing bucket, refused
// credentials, an invalid name.
func IsPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName", "AllAccessDisabled":
			return true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound, http.StatusForbidden, http.StatusBadRequest, http.StatusMovedPermanently:
			return true
		}
	}
	return false
}
