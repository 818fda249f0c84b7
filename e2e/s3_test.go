package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of the test S3 server's root account.
const (
	s3AccessKey = "GCTESTS3ACCESSKEY"
	s3Secret    = "gc-test-s3-secret-0123456789abcdef"
)

// s3Server is a real S3 server, versitygw v1.8.0 over a posix folder, started by the test
// (installed by .ci/deps: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0). Tests
// stop and restart it to play an S3 outage; the folder and port stay the same.
type s3Server struct {
	t      testing.TB
	Addr   string // 127.0.0.1:port
	Dir    string
	bin    string
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	log    strings.Builder
}

// URL is the S3 endpoint.
func (s *s3Server) URL() string { return "http://" + s.Addr }

// versitygwBinary finds versitygw on the PATH or in the Go bin folder.
func versitygwBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatal("versitygw not installed (bash .ci/deps installs it: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	return ""
}

// startS3 starts a versitygw on a free port; it is stopped when the test ends.
func startS3(t testing.TB) *s3Server {
	t.Helper()
	s := &s3Server{t: t, Addr: freeAddr(t), Dir: t.TempDir(), bin: versitygwBinary(t)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

type s3Log struct{ s *s3Server }

func (w s3Log) Write(b []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(b)
}

// start (re)starts the server and waits until it answers.
func (s *s3Server) start() {
	t := s.t
	t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.Addr, "--access", s3AccessKey, "--secret", s3Secret, "--quiet", "posix", s.Dir)
	s.cmd.Stdout, s.cmd.Stderr = s3Log{s}, s3Log{s}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	c := s.client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.exited:
			t.Fatalf("versitygw exited: %s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not ready after 20 s: %v\n%s", err, s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *s3Server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop ends the server at once, as a crashed or unplugged S3 would.
func (s *s3Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// client is an S3 client for the server with its root credentials.
func (s *s3Server) client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(s.URL()),
		UsePathStyle:               true,
		Credentials:                staticCreds(s3AccessKey, s3Secret),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// serveArgs are the `glasscast serve` flags that point recording (and chat logging) at it.
func (s *s3Server) serveArgs() []string {
	return []string{"--archive-s3-endpoint", s.URL(), "--archive-s3-access-key-id", s3AccessKey,
		"--archive-s3-secret-access-key", s3Secret}
}

func (s *s3Server) createBucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// keys lists a bucket's keys under prefix.
func (s *s3Server) keys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	var out []string
	p := s3.NewListObjectsV2Paginator(s.client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, *o.Key)
		}
	}
	return out
}

// get reads an object; ok is false when it does not exist.
func (s *s3Server) get(t *testing.T, bucket, key string) ([]byte, bool) {
	t.Helper()
	out, err := s.client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk interface{ ErrorCode() string }
		if errors.As(err, &nsk) && (nsk.ErrorCode() == "NoSuchKey" || nsk.ErrorCode() == "NotFound") {
			return nil, false
		}
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// publicURL serves a bucket's objects over plain HTTP on 127.0.0.1, as a public bucket or a
// CDN would, so that players (ffprobe) read recordings with relative URIs and byte ranges.
// Each request is a signed GetObject with the client's Range.
func (s *s3Server) publicURL(t *testing.T, bucket string) string {
	t.Helper()
	c := s.client()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(strings.TrimPrefix(r.URL.Path, "/"))}
		if rg := r.Header.Get("Range"); rg != "" {
			in.Range = aws.String(rg)
		}
		out, err := c.GetObject(r.Context(), in)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer out.Body.Close()
		if out.ContentType != nil {
			w.Header().Set("Content-Type", *out.ContentType)
		}
		if out.ContentLength != nil {
			w.Header().Set("Content-Length", strconv.FormatInt(*out.ContentLength, 10))
		}
		status := http.StatusOK
		if out.ContentRange != nil {
			w.Header().Set("Content-Range", *out.ContentRange)
			status = http.StatusPartialContent
		}
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(status)
		_, _ = io.Copy(w, out.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// freeAddr is freePort for benchmarks too.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
