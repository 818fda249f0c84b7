package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// PollersConfig describes a run of plain HLS players: each reloads its media playlist on a
// timer and never sends an LL-HLS directive, as Amazon's IVS player does once a segment, and
// as any player without low-latency support does. A blocking reload waits for the next part
// and is shared by every viewer of it; a plain one is answered at once with what the server
// has, so its cost to the server is its own measure.
type PollersConfig struct {
	URL      string        // multivariant playlist URL; its first variant's media playlist is polled
	Pollers  int           // concurrent players
	Every    time.Duration // between two reloads of one player
	Duration time.Duration // how long each polls; their starts are spread over one Every
	NoGzip   bool          // as ViewersConfig.NoGzip
}

// PollersReport is the outcome of a pollers run.
type PollersReport struct {
	Requests, Failed int64
	Elapsed          time.Duration
	P50, P99         time.Duration // response times
}

func (r PollersReport) String() string {
	return fmt.Sprintf("%d reloads in %v (%.0f/s), %d failed; response time p50 %v p99 %v\n", r.Requests,
		r.Elapsed.Round(time.Millisecond), float64(r.Requests)/r.Elapsed.Seconds(), r.Failed,
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
}

// Pollers runs the load and returns its report; the error is non-nil when the media playlist
// could not be found or any reload failed.
func Pollers(ctx context.Context, cfg PollersConfig) (PollersReport, error) {
	if cfg.Pollers <= 0 || cfg.Every <= 0 || cfg.Duration <= 0 {
		return PollersReport{}, errors.New("pollers: the count, the interval and the duration must be positive")
	}
	st := &stats{errors: map[string]int64{}}
	client := newClient(cfg.Pollers+10, cfg.Every+30*time.Second)
	first := &viewer{client: client, st: st, noGzip: cfg.NoGzip}
	mv, base, err := first.multivariant(ctx, cfg.URL)
	if err != nil {
		return PollersReport{}, fmt.Errorf("pollers: %w", err)
	}
	media := resolve(base, mv.Variants[0].URI).String()

	st.requests.Store(0)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var mu sync.Mutex
	var times []time.Duration
	var wg sync.WaitGroup
	for i := range cfg.Pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := &viewer{client: client, st: st, noGzip: cfg.NoGzip}
			own := make([]time.Duration, 0, int(cfg.Duration/cfg.Every)+1)
			next := start.Add(cfg.Every * time.Duration(i) / time.Duration(cfg.Pollers))
			for ; next.Before(end); next = next.Add(cfg.Every) {
				t := time.NewTimer(time.Until(next))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				sent := time.Now()
				if _, err := v.get(ctx, media); err == nil {
					own = append(own, time.Since(sent))
				}
			}
			mu.Lock()
			times = append(times, own...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rep := PollersReport{Requests: st.requests.Load(), Elapsed: time.Since(start)}
	for _, n := range st.errors {
		rep.Failed += n
	}
	slices.Sort(times)
	if n := len(times); n > 0 {
		rep.P50, rep.P99 = times[n/2], times[min(n-1, n*99/100)]
	}
	if rep.Failed > 0 {
		return rep, fmt.Errorf("pollers: %d of %d reloads failed: %v", rep.Failed, rep.Requests, st.errors)
	}
	return rep, nil
}
