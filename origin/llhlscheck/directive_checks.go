package llhlscheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

func directiveChecks() []Check {
	return []Check{
		{"D1", "_HLS_msn waits for the segment to complete", Live, checkD1},
		{"D2", "_HLS_msn+_HLS_part waits for the part", Live, checkD2},
		{"D3", "a part past the segment's last is part 0 of the next", Live, checkD3},
		{"D4", "an old _HLS_msn gets the whole playlist at once", Live, checkD4},
		{"D5", "directives ignored once the playlist has EXT-X-ENDLIST", Ending, checkD5},
		{"D6", "too far ahead: 400 at once", Live, checkD6},
		{"D7", "_HLS_part without _HLS_msn: 400", Live, checkD7},
		{"D8", "503 after blocking 3 × TD", Stalling, checkD8},
		{"D9", "delta updates skip only segments older than the skip boundary", Live, checkD9},
		{"D10", "_HLS_skip ignored without CAN-SKIP-UNTIL", Live, checkD10},
		{"D11", "the hinted part is held, then sent whole", Live, checkD11},
		{"D12", "unknown, unhinted resources: 404", Live, checkD12},
		{"D13", "other query parameters carried into child URIs, _HLS_ ones not", Live, checkD13},
	}
}

func checkD1(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	target := pl.MaxMSN()
	if pl.Pending == nil {
		target++
	}
	got, resp, err := t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d", target))
	if err != nil {
		return err
	}
	if c, ok := got.LastComplete(); !ok || c < target {
		return fmt.Errorf("_HLS_msn=%d answered before segment %d completed (last complete %d)", target, target, c)
	}
	// It must answer when the segment completes, not a part or more later.
	if next := got.Segment(target + 1); next != nil && len(next.Parts) > 1 {
		return fmt.Errorf("_HLS_msn=%d answered %d parts after the segment completed", target, len(next.Parts))
	}
	return within("_HLS_msn for the segment in progress", resp.LastByte, secondsDur(1.5*float64(pl.TargetDuration))+t.tol())
}

func checkD2(ctx context.Context, t *Target) error {
	u, pl, err := t.lowLatency(ctx)
	if err != nil {
		return err
	}
	for range 3 {
		last, _ := pl.LastPart()
		got, resp, err := t.next(ctx, u, pl)
		if err != nil {
			return err
		}
		nl, _ := got.LastPart()
		if nl.MSN < last.MSN || nl.MSN == last.MSN && nl.Index <= last.Index {
			return fmt.Errorf("asked for the part after %d.%d, got a playlist ending at %d.%d", last.MSN, last.Index, nl.MSN, nl.Index)
		}
		if err := within("a blocking reload for the next part", resp.LastByte, secondsDur(pl.PartTarget)+t.tol()); err != nil {
			return err
		}
		pl = got
	}
	return nil
}

func checkD3(ctx context.Context, t *Target) error {
	u, pl, err := t.lowLatency(ctx)
	if err != nil {
		return err
	}
	// Catch a segment as it completes, then ask for the part past its last.
	target := pl.MaxMSN()
	if pl.Pending == nil {
		target++
	}
	done, _, err := t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d", target))
	if err != nil {
		return err
	}
	seg := done.Segment(target)
	if seg == nil || len(seg.Parts) == 0 {
		return fmt.Errorf("segment %d lists no parts right after completing", target)
	}
	n := len(seg.Parts)
	got, resp, err := t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", target, n))
	if err != nil {
		return err
	}
	next := got.Segment(target + 1)
	if next == nil || len(next.Parts) == 0 {
		return fmt.Errorf("_HLS_msn=%d&_HLS_part=%d answered without part 0 of segment %d", target, n, target+1)
	}
	if next != got.Pending {
		return fmt.Errorf("_HLS_msn=%d&_HLS_part=%d waited for segment %d to complete", target, n, target+1)
	}
	return within("rolling over to part 0 of the next segment", resp.LastByte, secondsDur(pl.PartTarget)+t.tol())
}

func checkD4(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	old := pl.MediaSequence - min(pl.MediaSequence, 5)
	d := fmt.Sprintf("_HLS_msn=%d", old)
	if _, ok := pl.LastPart(); ok {
		d += "&_HLS_part=0"
	}
	got, resp, err := t.load(ctx, u, d)
	if err != nil {
		return fmt.Errorf("old _HLS_msn: %w", err)
	}
	if got.Skip != nil {
		return errors.New("old _HLS_msn answered with a delta update")
	}
	if len(got.Segments)+1 < len(pl.Segments) {
		return fmt.Errorf("old _HLS_msn answered %d segments, the playlist has %d", len(got.Segments), len(pl.Segments))
	}
	return within("an old _HLS_msn", resp.LastByte, t.tol())
}

func checkD5(ctx context.Context, t *Target) error {
	if t.End == nil {
		return fmt.Errorf("%w: no End hook", ErrNotApplicable)
	}
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	if err := t.End(ctx); err != nil {
		return fmt.Errorf("end: %w", err)
	}
	var pl *MediaPlaylist
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pl, _, err = t.load(ctx, u, ""); err != nil {
			return err
		}
		if pl.Ended {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("no EXT-X-ENDLIST 10 s after the end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := pl.MaxMSN()
	for _, d := range []string{
		fmt.Sprintf("_HLS_msn=%d", m+100),
		fmt.Sprintf("_HLS_msn=%d&_HLS_part=40", m+1),
		"_HLS_part=3",
		"_HLS_skip=YES",
		fmt.Sprintf("_HLS_msn=%d&_HLS_skip=v2", m),
	} {
		got, resp, err := t.load(ctx, u, d)
		if err != nil {
			return fmt.Errorf("?%s after ENDLIST: %w", d, err)
		}
		switch {
		case !got.Ended:
			return fmt.Errorf("?%s after ENDLIST: no EXT-X-ENDLIST", d)
		case got.Skip != nil:
			return fmt.Errorf("?%s after ENDLIST: a delta update", d)
		case len(got.PreloadHints) > 0:
			return fmt.Errorf("?%s after ENDLIST: EXT-X-PRELOAD-HINT", d)
		case len(got.Prefetch) > 0:
			return fmt.Errorf("?%s after ENDLIST: EXT-X-PREFETCH", d)
		}
		if err := within("a directive after ENDLIST", resp.LastByte, t.tol()); err != nil {
			return err
		}
	}
	if _, err := t.getOK(ctx, t.URL); err != nil {
		return fmt.Errorf("multivariant after the end: %w", err)
	}
	return nil
}

// fastStatus requires status within 50 ms (plus tolerance past 100 ms).
func (t *Target) fastStatus(ctx context.Context, u, directives string, status int) error {
	r, err := t.get(ctx, withQuery(u, directives))
	if err != nil {
		return err
	}
	if r.Status != status {
		return fmt.Errorf("?%s: status %d, want %d", directives, r.Status, status)
	}
	return within("?"+directives, r.LastByte, 50*time.Millisecond+max(0, t.tol()-100*time.Millisecond))
}

func checkD6(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	if err := t.fastStatus(ctx, u, fmt.Sprintf("_HLS_msn=%d", pl.MaxMSN()+3), http.StatusBadRequest); err != nil {
		return err
	}
	last, ok := pl.LastPart()
	if !ok {
		return nil
	}
	limit := 3.0
	if pl.PartTarget < 1 {
		limit = math.Ceil(3 / pl.PartTarget)
	}
	return t.fastStatus(ctx, u, fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", last.MSN, last.Index+int(limit)+1), http.StatusBadRequest)
}

func checkD7(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	return t.fastStatus(ctx, u, "_HLS_part=0", http.StatusBadRequest)
}

func checkD8(ctx context.Context, t *Target) error {
	if t.Stall == nil {
		return fmt.Errorf("%w: no Stall hook", ErrNotApplicable)
	}
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	resume, err := t.Stall(ctx)
	if err != nil {
		return fmt.Errorf("stall: %w", err)
	}
	defer func() { _ = resume(context.WithoutCancel(ctx)) }()
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	td := secondsDur(float64(pl.TargetDuration))
	d := fmt.Sprintf("_HLS_msn=%d", pl.MaxMSN()+1)
	if last, ok := pl.LastPart(); ok {
		d = fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", last.MSN, last.Index+1)
	}
	r, err := t.get(ctx, withQuery(u, d))
	if err != nil {
		return err
	}
	if r.Status != http.StatusServiceUnavailable {
		return fmt.Errorf("?%s while stalled: status %d, want 503", d, r.Status)
	}
	if r.LastByte < 3*td-t.tol() {
		return fmt.Errorf("503 after %v, before 3 × TD", r.LastByte.Round(time.Millisecond))
	}
	return within("503 for a stalled stream", r.LastByte, 3*td+time.Second+t.tol())
}
