package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"glasscast/archive/bucket"
)

// partSuffix marks a file still being written: it is not uploaded until Commit.
const partSuffix = ".part"

// Queue is one recording's folder: the objects waiting for the bucket, named by their key
// relative to the recording's prefix, and the recorder's own state files beside them.
type Queue struct {
	s    *Spool
	id   string
	dir  string
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	entries map[string]*entry
	seq     uint64
	idle    chan struct{} // closed while nothing is pending
	dropped []Drop
	failing bool
}

type entry struct {
	rel     string
	seq     uint64
	version uint64
	since   time.Time
	size    int64
}

// Drop is a file given up: it waited longer than MaxAge for its bucket.
type Drop struct {
	Rel    string
	Reason string
}

// Open returns recording id's queue, creating its folder. Files a previous run left complete
// are pending again at once; files still being written (see Create) are left to the caller.
func (s *Spool) Open(id string) (*Queue, error) {
	if !safeID(id) {
		return nil, fmt.Errorf("recording id %q is not a safe folder name", id)
	}
	q := &Queue{s: s, id: id, dir: filepath.Join(s.cfg.Dir, id), log: s.log.With("recording", id),
		wake: make(chan struct{}, 1), entries: map[string]*entry{}, idle: make(chan struct{})}
	close(q.idle)
	if err := os.MkdirAll(filepath.Join(q.dir, "files"), 0o700); err != nil {
		return nil, fmt.Errorf("spool folder: %w", err)
	}
	root := filepath.Join(q.dir, "files")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(rel, partSuffix) || strings.Contains(path.Base(rel), ".tmp-") {
			if strings.Contains(path.Base(rel), ".tmp-") {
				_ = q.remove(rel) // half-written by WriteFile: the complete one is beside it
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		q.enqueue(rel, fi.Size(), fi.ModTime())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", q.dir, err)
	}
	return q, nil
}

// Dir is the recording's folder, where the caller may keep state files of its own.
func (q *Queue) Dir() string { return q.dir }

// Path is where the object rel lives while it waits.
func (q *Queue) Path(rel string) string {
	return filepath.Join(q.dir, "files", filepath.FromSlash(rel))
}

// Reserve accounts n bytes about to be appended to a file being written.
func (q *Queue) Reserve(n int64) error { return q.s.reserve(n) }

// Release gives back n reserved bytes that were not written after all.
func (q *Queue) Release(n int64) { _ = q.s.reserve(-n) }

// Grew accounts n bytes (negative: fewer) written to the recording's folder outside Reserve,
// which had to be written whatever the bound: the recording's journal. Remove releases every
// file in the folder, so a file written unaccounted would drive the spool's count below what
// the disk holds, and its bound up, for as long as the process runs.
func (q *Queue) Grew(n int64) { q.s.add(n) }

// Create opens rel for writing in place (a TS file that grows segment by segment). It is
// uploaded once Commit names it; until then it lives under a ".part" name.
func (q *Queue) Create(rel string) (*os.File, error) {
	p := q.Path(rel) + partSuffix
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	return f, nil
}

// OpenPart reopens a file being written that a previous run left, for its caller to repair.
func (q *Queue) OpenPart(rel string) (*os.File, error) {
	return os.OpenFile(q.Path(rel)+partSuffix, os.O_RDWR, 0)
}

// Commit queues a file written through Create, keeping its first size bytes: a run that
// stopped mid-write leaves bytes its caller never accounted for.
func (q *Queue) Commit(rel string, size int64) error {
	p := q.Path(rel)
	fi, err := os.Stat(p + partSuffix)
	if err != nil {
		return err
	}
	if fi.Size() > size {
		if err := os.Truncate(p+partSuffix, size); err != nil {
			return err
		}
		q.Release(fi.Size() - size)
	}
	if err := os.Rename(p+partSuffix, p); err != nil {
		return err
	}
	q.mu.Lock()
	q.enqueue(rel, size, time.Now())
	q.mu.Unlock()
	return nil
}

// Discard removes a file being written, releasing its bytes.
func (q *Queue) Discard(rel string, size int64) {
	if err := os.Remove(q.Path(rel) + partSuffix); err == nil {
		q.Release(size)
	}
}

// WriteFile queues a whole object, replacing a pending one of the same name: the newest
// version of a playlist is the one that counts, and it moves behind everything queued before.
func (q *Queue) WriteFile(rel string, data []byte) error {
	p := q.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(p), path.Base(rel)+".tmp-"+fmt.Sprint(rand.Uint64()))
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool %s: %w", rel, err)
	}
	// The swap and the queue change are one step for the uploader, which must never delete a
	// version it did not send.
	q.mu.Lock()
	defer q.mu.Unlock()
	var old int64
	if fi, err := os.Stat(p); err == nil {
		old = fi.Size()
	}
	// Only media counts against the bound: a recording must always be able to write the
	// playlists and the event file that close it.
	delta := int64(len(data)) - old
	if class(rel) != 1 {
		q.s.add(delta)
	} else if err := q.s.reserve(delta); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		q.Release(int64(len(data)) - old)
		_ = os.Remove(tmp)
		return fmt.Errorf("spool %s: %w", rel, err)
	}
	q.enqueue(rel, int64(len(data)), time.Now())
	return nil
}

// enqueue adds or refreshes rel. Called with q.mu held (or before the queue is shared).
func (q *Queue) enqueue(rel string, size int64, since time.Time) {
	q.seq++
	e := q.entries[rel]
	if e == nil {
		e = &entry{rel: rel, since: since}
		q.entries[rel] = e
	}
	e.seq, e.size = q.seq, size
	e.version++
	if len(q.entries) == 1 {
		q.idle = make(chan struct{})
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// class orders uploads so the bucket is consistent at every moment: the started event first,
// media before the playlists that list it, the final event last.
func class(rel string) int {
	switch {
	case rel == "events/recording-started.json":
		return 0
	case strings.HasPrefix(rel, "events/"):
		return 3
	case strings.HasSuffix(rel, ".m3u8"), strings.HasPrefix(rel, "media/latest_thumbnail/"):
		return 2
	}
	return 1
}

// next returns the entry to upload next, or nil.
func (q *Queue) next() *entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var best *entry
	for _, e := range q.entries {
		if best == nil || class(e.rel) < class(best.rel) || class(e.rel) == class(best.rel) && e.seq < best.seq {
			best = e
		}
	}
	if best == nil {
		return nil
	}
	cp := *best
	return &cp
}

// Pending is the number of objects waiting.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// Idle returns a channel closed while nothing is pending.
func (q *Queue) Idle() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idle
}

// Dropped returns the files given up so far.
func (q *Queue) Dropped() []Drop {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Drop(nil), q.dropped...)
}

// Remove deletes the recording's folder once its objects are all in the bucket.
func (q *Queue) Remove() error {
	var size int64
	_ = filepath.WalkDir(q.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	if err := os.RemoveAll(q.dir); err != nil {
		return err
	}
	q.Release(size)
	return nil
}

// remove deletes a spooled file and releases its bytes.
func (q *Queue) remove(rel string) error {
	p := q.Path(rel)
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	q.Release(fi.Size())
	return nil
}

// Run uploads pending objects to store under prefix until ctx ends, in order, one at a time,
// retrying with exponential backoff. onDrop hears of media files given up after MaxAge, or
// RefusedAge while the bucket refuses them.
func (q *Queue) Run(ctx context.Context, store bucket.Store, prefix string, onDrop func(Drop)) {
	backoff := q.s.cfg.MinBackoff
	var downSince time.Time
	for {
		e := q.next()
		if e == nil {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := q.upload(ctx, store, prefix+"/"+e.rel, e)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if !downSince.IsZero() {
				q.log.Info("bucket reachable again; uploading the spool", "bucket", store.Location(), "after", time.Since(downSince).Round(time.Millisecond))
				downSince = time.Time{}
			}
			backoff = q.s.cfg.MinBackoff
			q.done(e)
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			q.forget(e) // replaced and uploaded meanwhile, or removed: nothing to send
			continue
		}
		if downSince.IsZero() {
			downSince = time.Now()
			q.log.Warn("upload failed; keeping objects in the spool and retrying", "key", e.rel, "bucket", store.Location(), "err", err)
		}
		maxAge := q.s.cfg.MaxAge
		if bucket.IsPermanent(err) && (maxAge <= 0 || q.s.cfg.RefusedAge < maxAge) {
			maxAge = q.s.cfg.RefusedAge
		}
		if class(e.rel) == 1 && maxAge > 0 && time.Since(e.since) > maxAge {
			d := Drop{Rel: e.rel, Reason: fmt.Sprintf("not uploaded within %v: %v", maxAge, err)}
			q.log.Error("giving up a spooled object", "key", e.rel, "reason", d.Reason)
			q.mu.Lock()
			q.dropped = append(q.dropped, d)
			q.mu.Unlock()
			q.done(e)
			if onDrop != nil {
				onDrop(d)
			}
			continue
		}
		// Jitter keeps many recordings from retrying in lockstep against a recovering server.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, q.s.cfg.MaxBackoff)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

func (q *Queue) upload(ctx context.Context, store bucket.Store, key string, e *entry) error {
	f, err := os.Open(q.Path(e.rel))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// A slow bucket must not hold the queue forever; big objects get more time.
	timeout := 30*time.Second + time.Duration(fi.Size()/(256<<10))*time.Second
	uctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return store.Put(uctx, key, f, fi.Size())
}

// done removes an uploaded (or dropped) entry and its file, unless a newer version replaced it
// meanwhile, which then still waits.
func (q *Queue) done(e *entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cur := q.entries[e.rel]
	if cur == nil || cur.version != e.version {
		return
	}
	delete(q.entries, e.rel)
	_ = q.remove(e.rel)
	if len(q.entries) == 0 {
		close(q.idle)
	}
}

// forget drops an entry whose file is gone.
func (q *Queue) forget(e *entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur := q.entries[e.rel]; cur != nil && cur.version == e.version {
		delete(q.entries, e.rel)
		if len(q.entries) == 0 {
			close(q.idle)
		}
	}
}

// Cancel withdraws a pending object that must not reach the bucket after all.
func (q *Queue) Cancel(rel string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entries[rel]
	if e == nil {
		return
	}
	delete(q.entries, rel)
	_ = q.remove(rel)
	if len(q.entries) == 0 {
		close(q.idle)
	}
}
