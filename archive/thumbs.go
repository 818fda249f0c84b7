package archive

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"glasscast/archive/layout"
	"glasscast/archive/remux"
)

// thumbnailer takes a recording's interval thumbnails: the first key frame at or after every
// multiple of targetIntervalSeconds on the recording's timeline, decoded off the recording's
// lock by one worker so that thumbnails keep their order. Its fields are guarded by r.mu.
type thumbnailer struct {
	r        *recording
	ready    bool
	src      *renditionState
	height   int
	interval time.Duration
	next     time.Duration
	jobs     chan remux.Keyframe
	pending  sync.WaitGroup
}

// setupLocked decides where thumbnails come from, once the renditions are known, and starts
// the worker. Called with r.mu held.
func (t *thumbnailer) setupLocked(ctx context.Context) {
	r := t.r
	if t.ready || len(r.renditions) == 0 {
		return
	}
	t.ready = true
	tc := r.meta.Config.Thumbnail
	maker := r.a.cfg.Thumbnails
	if tc == nil || tc.RecordingMode != "INTERVAL" || maker == nil {
		return
	}
	if err := maker.Available(); err != nil {
		r.log.Warn("thumbnails are not recorded", "err", err)
		return
	}
	t.src, t.height = thumbnailPlan(r.renditions, tc.Resolution)
	if t.src == nil {
		return
	}
	t.interval = time.Duration(max(tc.TargetIntervalSeconds, 1)) * time.Second
	t.next = t.due(t.src.elapsed())
	if r.thumbN == 0 {
		t.next = 0 // the first key frame makes the first thumbnail
	}
	if r.thumbs == nil {
		w, h := t.src.lr.Width, t.src.lr.Height
		if t.height > 0 && h > 0 {
			w, h = evenRound(float64(w)*float64(t.height)/float64(h)), t.height
		}
		r.thumbs = &layout.Thumbnails{Sequential: slices.Contains(tc.Storage, "SEQUENTIAL"),
			Latest: slices.Contains(tc.Storage, "LATEST"), Width: w, Height: h}
	}
	t.jobs = make(chan remux.Keyframe, 4)
	go t.work(ctx)
}

func evenRound(v float64) int { return int(math.Round(v/2)) * 2 }

// due is the next multiple of the interval after d.
func (t *thumbnailer) due(d time.Duration) time.Duration {
	return (d/t.interval + 1) * t.interval
}

// want returns the key frame filter for rendition rs. Called with r.mu held.
func (t *thumbnailer) want(rs *renditionState) func(time.Duration) bool {
	if t.src != rs || t.jobs == nil {
		return nil
	}
	return func(d time.Duration) bool { return d >= t.next }
}

// add queues a key frame that want asked for. Called with r.mu held.
func (t *thumbnailer) add(ctx context.Context, kf remux.Keyframe) {
	t.next = t.due(kf.Time)
	t.pending.Add(1)
	select {
	case t.jobs <- kf:
	default:
		t.pending.Done()
		t.r.log.Warn("thumbnail skipped: the previous ones are still being decoded", "at", kf.Time)
	}
}

// wait returns once every queued thumbnail is written.
func (t *thumbnailer) wait() { t.pending.Wait() }

func (t *thumbnailer) work(ctx context.Context) {
	r := t.r
	for {
		var kf remux.Keyframe
		select {
		case kf = <-t.jobs:
		case <-ctx.Done():
			return
		}
		jpg, w, h, err := r.a.cfg.Thumbnails.JPEG(ctx, kf, t.height)
		r.mu.Lock()
		if err != nil {
			r.log.Warn("thumbnail not decoded", "at", kf.Time, "err", err)
		} else {
			th := r.thumbs
			th.Width, th.Height = w, h
			if th.Sequential {
				err = r.q.WriteFile(layout.ThumbnailKey(r.thumbN), jpg)
			}
			if err == nil && th.Latest {
				err = r.q.WriteFile(layout.LatestThumbnail, jpg)
			}
			if err != nil {
				r.log.Warn("thumbnail not spooled", "err", err)
			} else {
				cp := *th
				_ = r.j.add(entry{Kind: kindThumb, N: r.thumbN, Thumbs: &cp})
				r.thumbN++
			}
		}
		r.mu.Unlock()
		t.pending.Done()
	}
}
