package spool

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"glasscast/archive/bucket"
)

// flaky is a real bucket (a local folder store) behind a switch that makes uploads fail, to
// play an S3 outage in a unit test; e2e tests stop a real S3 server instead. It records the
// order of successful uploads.
type flaky struct {
	bucket.Store
	mu    sync.Mutex
	down  bool
	order []string
}

func (f *flaky) Put(ctx context.Context, key string, body io.ReadSeeker, size int64) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return errors.New("connection refused")
	}
	if err := f.Store.Put(ctx, key, body, size); err != nil {
		return err
	}
	f.mu.Lock()
	f.order = append(f.order, key)
	f.mu.Unlock()
	return nil
}

func (f *flaky) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func newBucket(t *testing.T) (*flaky, string) {
	t.Helper()
	root := t.TempDir()
	stores, err := bucket.New(bucket.Config{LocalDir: root})
	if err != nil {
		t.Fatal(err)
	}
	b, err := stores.Open("rec-bucket")
	if err != nil {
		t.Fatal(err)
	}
	return &flaky{Store: b}, filepath.Join(root, "rec-bucket")
}

func waitIdle(t *testing.T, q *Queue) {
	t.Helper()
	select {
	case <-q.Idle():
	case <-time.After(10 * time.Second):
		t.Fatalf("queue not idle: %d pending", q.Pending())
	}
}

// TestOrderAndOutage checks the upload order that keeps a bucket consistent (started event,
// media, playlists, final event) and that an outage only delays uploads.
func TestOrderAndOutage(t *testing.T) {
	sp, err := New(Config{Dir: t.TempDir(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sp.Open("rec1")
	if err != nil {
		t.Fatal(err)
	}
	b, dir := newBucket(t)
	b.set(true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go q.Run(ctx, b, "ivs/v1/p", nil)

	write := func(rel, data string) {
		if err := q.WriteFile(rel, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	write("events/recording-ended.json", "{}")
	write("media/hls/720p30/playlist.m3u8", "v1")
	f, err := q.Create("media/hls/720p30/0.ts")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Reserve(13); err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("tsdatagarbage"))
	f.Close()
	if err := q.Commit("media/hls/720p30/0.ts", 6); err != nil {
		t.Fatal(err)
	}
	write("events/recording-started.json", "{}")
	write("media/hls/720p30/playlist.m3u8", "v2") // replaces v1, still one upload
	time.Sleep(100 * time.Millisecond)
	if q.Pending() != 4 {
		t.Fatalf("%d pending during the outage, want 4", q.Pending())
	}
	b.set(false)
	waitIdle(t, q)
	want := []string{"ivs/v1/p/events/recording-started.json", "ivs/v1/p/media/hls/720p30/0.ts",
		"ivs/v1/p/media/hls/720p30/playlist.m3u8", "ivs/v1/p/events/recording-ended.json"}
	if !slices.Equal(b.order, want) {
		t.Fatalf("upload order %v, want %v", b.order, want)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "ivs/v1/p/media/hls/720p30/0.ts"))
	pl, _ := os.ReadFile(filepath.Join(dir, "ivs/v1/p/media/hls/720p30/playlist.m3u8"))
	if string(got) != "tsdata" || string(pl) != "v2" {
		t.Fatalf("uploaded %q and %q", got, pl)
	}
	if used := sp.Used(); used != 0 {
		t.Fatalf("spool holds %d bytes after everything was uploaded", used)
	}
}

// TestBoundsAndAge checks the size bound and the maximum age after which media is given up.
func TestBoundsAndAge(t *testing.T) {
	sp, err := New(Config{Dir: t.TempDir(), MaxBytes: 100, MaxAge: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sp.Open("rec2")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.WriteFile("media/thumbnails/thumb0.jpg", make([]byte, 80)); err != nil {
		t.Fatal(err)
	}
	if err := q.Reserve(30); !errors.Is(err, ErrFull) {
		t.Fatalf("reserve past the bound: %v", err)
	}
	// Playlists and event files always fit: a recording must be able to close.
	if err := q.WriteFile("events/recording-failed.json", make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	b, _ := newBucket(t)
	b.set(true)
	var drops []Drop
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go q.Run(ctx, b, "p", func(d Drop) { mu.Lock(); drops = append(drops, d); mu.Unlock() })
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	if len(drops) != 1 || drops[0].Rel != "media/thumbnails/thumb0.jpg" {
		t.Fatalf("drops %+v", drops)
	}
	mu.Unlock()
	if q.Pending() != 1 {
		t.Fatalf("%d pending: the event file must wait for the bucket, never be dropped", q.Pending())
	}
	b.set(false)
	waitIdle(t, q)
}

// TestRestart checks that a second run finds the first one's files: complete ones are
// pending, one being written is left to its owner, half-written replacements are removed.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	sp, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sp.Open("rec3")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.WriteFile("media/hls/720p30/playlist.m3u8", []byte("pl")); err != nil {
		t.Fatal(err)
	}
	f, _ := q.Create("media/hls/720p30/1.ts")
	_, _ = f.Write([]byte("partial"))
	f.Close()
	_ = os.WriteFile(q.Path("media/hls/720p30/playlist.m3u8")+".tmp-1", []byte("torn"), 0o600)

	sp2, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := sp2.Recordings(); !slices.Equal(ids, []string{"rec3"}) {
		t.Fatalf("recordings %v", ids)
	}
	q2, err := sp2.Open("rec3")
	if err != nil {
		t.Fatal(err)
	}
	if q2.Pending() != 1 {
		t.Fatalf("%d pending after restart, want the playlist only", q2.Pending())
	}
	if _, err := os.Stat(q.Path("media/hls/720p30/playlist.m3u8") + ".tmp-1"); !os.IsNotExist(err) {
		t.Fatal("torn temporary file left behind")
	}
	if err := q2.Commit("media/hls/720p30/1.ts", 4); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(q2.Path("media/hls/720p30/1.ts"))
	if string(b) != "part" || q2.Pending() != 2 {
		t.Fatalf("repaired file %q, %d pending", b, q2.Pending())
	}
	if _, err := sp2.Open("../escape"); err == nil {
		t.Fatal("a recording id leaving the spool folder was accepted")
	}
}

// refusing is a bucket that answers every upload as a missing bucket would.
type refusing struct{ bucket.Store }

func (refusing) Put(context.Context, string, io.ReadSeeker, int64) error {
	return bucket.Permanent(errors.New("NoSuchBucket: the specified bucket does not exist"))
}

// A bucket that refuses uploads in a way retrying cannot fix gives its media files up after
// RefusedAge, not MaxAge (a day by default), so that one recording's broken bucket does not
// fill the spool every channel's recordings share. An outage (TestBoundsAndAge) still keeps
// them for MaxAge, and event files always wait.
func TestRefusingBucketGivesUpSooner(t *testing.T) {
	sp, err := New(Config{Dir: t.TempDir(), MaxAge: time.Hour, RefusedAge: 50 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sp.Open("rec3")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.WriteFile("media/thumbnails/thumb0.jpg", make([]byte, 80)); err != nil {
		t.Fatal(err)
	}
	b, _ := newBucket(t)
	drops := make(chan Drop, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go q.Run(ctx, refusing{b}, "p", func(d Drop) { drops <- d })
	select {
	case d := <-drops:
		if d.Rel != "media/thumbnails/thumb0.jpg" {
			t.Fatalf("dropped %+v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a refused media file is still kept 5 s on, with RefusedAge 50 ms")
	}
	if sp.Used() != 0 {
		t.Fatalf("%d bytes still counted after the drop", sp.Used())
	}
}
