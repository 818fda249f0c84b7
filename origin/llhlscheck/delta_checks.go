package llhlscheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// snapshot loads a full playlist and its delta update at one and the same stream position,
// retrying while the stream moves between the two requests.
func (t *Target) snapshot(ctx context.Context, u, skip string) (full, delta *MediaPlaylist, err error) {
	for range 10 {
		cur, _, err := t.load(ctx, u, "")
		if err != nil {
			return nil, nil, err
		}
		last, ok := cur.LastPart()
		d := fmt.Sprintf("_HLS_msn=%d", cur.MaxMSN())
		if ok {
			d = fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", last.MSN, last.Index)
		}
		f1, _, err := t.load(ctx, u, d)
		if err != nil {
			return nil, nil, err
		}
		dl, _, err := t.load(ctx, u, d+"&_HLS_skip="+skip)
		if err != nil {
			return nil, nil, err
		}
		f2, _, err := t.load(ctx, u, d)
		if err != nil {
			return nil, nil, err
		}
		if bytes.Equal(f1.Raw, f2.Raw) {
			return f1, dl, nil
		}
	}
	return nil, nil, errors.New("the stream moved during every attempt to compare playlists")
}

func checkD9(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	csu := seconds(pl.ServerControl, "CAN-SKIP-UNTIL")
	if math.IsNaN(csu) {
		return fmt.Errorf("%w: no CAN-SKIP-UNTIL", ErrNotApplicable)
	}
	// Wait until the playlist is long enough to skip something.
	for pl.Duration() < csu+float64(pl.TargetDuration)+1 {
		if pl.Ended {
			return fmt.Errorf("%w: the playlist ended before outgrowing the skip boundary", ErrNotApplicable)
		}
		if pl, _, err = t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d", pl.MaxMSN()+1)); err != nil {
			return err
		}
	}
	modes := []string{"YES"}
	if pl.ServerControl["CAN-SKIP-DATERANGES"] == "YES" {
		modes = append(modes, "v2")
	}
	for _, mode := range modes {
		full, delta, err := t.snapshot(ctx, u, mode)
		if err != nil {
			return err
		}
		if err := compareDelta(full, delta, csu, mode); err != nil {
			return fmt.Errorf("_HLS_skip=%s: %w", mode, err)
		}
	}
	return nil
}

// compareDelta checks that delta is full with only segments older than the skip boundary
// replaced by EXT-X-SKIP.
func compareDelta(full, delta *MediaPlaylist, skipUntil float64, mode string) error {
	if delta.Skip == nil {
		return errors.New("no EXT-X-SKIP though the playlist is longer than the skip boundary")
	}
	k := delta.Skip.SkippedSegments
	if k < 1 || k > len(full.Segments) {
		return fmt.Errorf("SKIPPED-SEGMENTS=%d of %d segments", k, len(full.Segments))
	}
	end := full.Duration()
	var segEnd float64
	for i := 0; i < k; i++ {
		segEnd += full.Segments[i].Duration
		if end-segEnd < skipUntil-eps {
			return fmt.Errorf("skipped segment %d ends %.3f s from the end, inside the skip boundary %g", full.Segments[i].MSN, end-segEnd, skipUntil)
		}
	}
	switch {
	case delta.MediaSequence != full.MediaSequence:
		return fmt.Errorf("MEDIA-SEQUENCE %d, full playlist %d", delta.MediaSequence, full.MediaSequence)
	case delta.DiscontinuitySequence != full.DiscontinuitySequence:
		return errors.New("DISCONTINUITY-SEQUENCE differs")
	case delta.TargetDuration != full.TargetDuration || delta.PartTarget != full.PartTarget:
		return errors.New("TARGETDURATION or PART-TARGET differs")
	case delta.ServerControlLine != full.ServerControlLine:
		return errors.New("EXT-X-SERVER-CONTROL differs")
	case len(delta.Segments) != len(full.Segments)-k:
		return fmt.Errorf("%d segments after the skip, want %d", len(delta.Segments), len(full.Segments)-k)
	case fmt.Sprint(delta.PreloadHints) != fmt.Sprint(full.PreloadHints),
		fmt.Sprint(delta.Reports) != fmt.Sprint(full.Reports),
		!slices.Equal(delta.Prefetch, full.Prefetch):
		return errors.New("hints, reports or prefetch lines differ")
	}
	// Date ranges of skipped segments stay in a YES delta, written before the first segment
	// shown: compare them per segment from the second one on, and as a set below.
	same := func(a, b *Segment, first bool) error {
		switch {
		case a == nil && b == nil:
			return nil
		case a == nil || b == nil:
			return errors.New("segment in progress differs")
		case a.URI != b.URI || a.Duration != b.Duration || !a.PDT.Equal(b.PDT) || a.Discontinuity != b.Discontinuity:
			return fmt.Errorf("segment %d differs", a.MSN)
		case a.Map != b.Map:
			return fmt.Errorf("segment %d: EXT-X-MAP in effect %q, full playlist %q", a.MSN, a.Map, b.Map)
		case !slices.EqualFunc(a.Parts, b.Parts, func(x, y *Part) bool { return *x == *y }):
			return fmt.Errorf("segment %d: parts differ", a.MSN)
		case mode == "YES" && !first && !slices.Equal(a.DateRanges, b.DateRanges):
			return fmt.Errorf("segment %d: date ranges differ", a.MSN)
		}
		return nil
	}
	for i, s := range delta.Segments {
		if err := same(s, full.Segments[k+i], i == 0); err != nil {
			return err
		}
	}
	if err := same(delta.Pending, full.Pending, len(delta.Segments) == 0); err != nil {
		return err
	}
	fullIDs := map[string]time.Time{}
	for _, d := range full.DateRanges {
		fullIDs[d.ID] = d.Start
	}
	deltaIDs := map[string]bool{}
	for _, d := range delta.DateRanges {
		if _, ok := fullIDs[d.ID]; !ok {
			return fmt.Errorf("date range %s is not in the full playlist", d.ID)
		}
		deltaIDs[d.ID] = true
	}
	boundary := full.Segments[k].PDT
	for id, start := range fullIDs {
		if deltaIDs[id] {
			continue
		}
		if mode == "YES" {
			return fmt.Errorf("date range %s dropped by _HLS_skip=YES", id)
		}
		if !start.Before(boundary) {
			return fmt.Errorf("date range %s dropped though it starts after the skip boundary", id)
		}
	}
	want := 9
	if mode == "v2" {
		want = 10
		if !delta.Skip.HasRecentlyRemoved {
			return errors.New("no RECENTLY-REMOVED-DATERANGES")
		}
	}
	if delta.Version != want {
		return fmt.Errorf("EXT-X-VERSION %d, want %d", delta.Version, want)
	}
	return nil
}

func checkD10(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "_HLS_skip=YES")
	if err != nil {
		return err
	}
	if _, ok := pl.ServerControl["CAN-SKIP-UNTIL"]; ok {
		return fmt.Errorf("%w: the server advertises CAN-SKIP-UNTIL", ErrNotApplicable)
	}
	if pl.Skip != nil {
		return errors.New("EXT-X-SKIP without CAN-SKIP-UNTIL")
	}
	return nil
}
