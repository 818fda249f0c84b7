// Package spool keeps recordings' objects on local disk until they are in their bucket: files
// wait in the data folder, an uploader per recording sends them in order and retries with
// backoff while the bucket is slow or down, and a restarted process finds and sends the rest.
package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrFull is returned by Reserve and WriteFile when the spool would exceed its size bound.
var ErrFull = errors.New("spool full")

// Config bounds and paces a spool.
type Config struct {
	// Dir holds one folder per recording.
	Dir string
	// MaxBytes bounds the bytes waiting on disk, all recordings together.
	MaxBytes int64
	// MaxAge is how long a media file may wait for its bucket before it is given up as lost.
	MaxAge time.Duration
	// RefusedAge replaces MaxAge while the bucket refuses uploads in a way retrying cannot
	// fix (missing bucket, refused credentials: bucket.IsPermanent): time for an operator to
	// mend it, without one recording's broken bucket filling the spool that every channel's
	// recordings share for a day. 0 means 5 minutes.
	RefusedAge time.Duration
	// MinBackoff and MaxBackoff pace retries after a failed upload.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Spool is the set of recording queues under Dir.
type Spool struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	used int64
}

// New opens the spool folder and counts what it holds.
func New(cfg Config) (*Spool, error) {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(10*time.Second, cfg.MinBackoff)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RefusedAge <= 0 {
		cfg.RefusedAge = 5 * time.Minute
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool folder: %w", err)
	}
	s := &Spool{cfg: cfg, log: cfg.Logger}
	err := filepath.WalkDir(cfg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				s.used += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan spool: %w", err)
	}
	return s, nil
}

// Used is the number of bytes the spool holds.
func (s *Spool) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// reserve accounts n more bytes, or fails with ErrFull. A negative n releases bytes.
func (s *Spool) reserve(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 && s.cfg.MaxBytes > 0 && s.used+n > s.cfg.MaxBytes {
		return fmt.Errorf("%w: %d of %d bytes in use", ErrFull, s.used, s.cfg.MaxBytes)
	}
	s.used += n
	return nil
}

// add accounts n bytes whatever the bound.
func (s *Spool) add(n int64) {
	s.mu.Lock()
	s.used += n
	s.mu.Unlock()
}

// Recordings lists the recordings whose folders are in the spool: those a previous run did
// not finish.
func (s *Spool) Recordings() ([]string, error) {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// safeID accepts recording IDs as folder names: letters and digits only.
func safeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
