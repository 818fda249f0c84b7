package llhlscheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

func checkP10(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	td := secondsDur(float64(pl.TargetDuration))
	if pl.HasPartInf && len(pl.Parts()) > 0 {
		// Follow the stream part by part with blocking reloads, as hls.js does.
		pt := secondsDur(pl.PartTarget)
		n := int(2*td/pt) + 2
		var prevPart, prevSeg time.Time
		lastSeg, _ := pl.LastComplete()
		for i := 0; i < n; i++ {
			if pl, _, err = t.next(ctx, u, pl); err != nil {
				return err
			}
			now := time.Now()
			if i > 0 {
				if err := within("a new part", now.Sub(prevPart), pt+t.tol()); err != nil {
					return err
				}
			}
			prevPart = now
			if c, ok := pl.LastComplete(); ok && c != lastSeg {
				if !prevSeg.IsZero() {
					if err := within("a new segment", now.Sub(prevSeg), td*3/2+t.tol()); err != nil {
						return err
					}
				}
				prevSeg, lastSeg = now, c
			}
		}
		return nil
	}
	var prev time.Time
	for i := 0; i < 3; i++ {
		last, _ := pl.LastComplete()
		if pl, _, err = t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d", last+1)); err != nil {
			return err
		}
		now := time.Now()
		if i > 0 {
			if err := within("a new segment", now.Sub(prev), td*3/2+t.tol()); err != nil {
				return err
			}
		}
		prev = now
	}
	return nil
}

func checkP11(ctx context.Context, t *Target) error {
	u, pl, err := t.lowLatency(ctx)
	if err != nil {
		return err
	}
	for range 3 {
		if pl, _, err = t.next(ctx, u, pl); err != nil {
			return err
		}
		last, _ := pl.LastPart()
		pu, err := resolve(u, last.URI)
		if err != nil {
			return err
		}
		r, err := t.getOK(ctx, pu)
		if err != nil {
			return err
		}
		if err := within("downloading a just-listed part", r.LastByte, t.tol()); err != nil {
			return err
		}
	}
	return nil
}

func checkP12(ctx context.Context, t *Target) error {
	u, pl, err := t.lowLatency(ctx)
	if err != nil {
		return err
	}
	td := float64(pl.TargetDuration)
	end := pl.Duration()
	var start float64
	for _, s := range pl.all() {
		if len(s.Parts) > 0 && end-start > 3*td+eps {
			return fmt.Errorf("segment %d starts %.3f s from the end, its parts should be gone (3 × TD = %g s)", s.MSN, end-start, 3*td)
		}
		start += s.Duration
	}
	// The oldest segment with parts loses them next: keep their bytes, wait for the removal,
	// then fetch them again three target durations later.
	var oldest *Segment
	for _, s := range pl.Segments {
		if len(s.Parts) > 0 {
			oldest = s
			break
		}
	}
	if oldest == nil {
		return errors.New("no complete segment lists parts")
	}
	before := map[string][]byte{}
	for _, p := range oldest.Parts {
		pu, err := resolve(u, p.URI)
		if err != nil {
			return err
		}
		r, err := t.getOK(ctx, pu)
		if err != nil {
			return err
		}
		before[pu] = r.Body
	}
	deadline := time.Now().Add(5 * secondsDur(td))
	for {
		s := pl.Segment(oldest.MSN)
		if s == nil || len(s.Parts) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("parts of segment %d still listed after %g s", oldest.MSN, 5*td)
		}
		if pl, _, err = t.next(ctx, u, pl); err != nil {
			return err
		}
	}
	select {
	case <-time.After(3*secondsDur(td) + t.tol()):
	case <-ctx.Done():
		return ctx.Err()
	}
	for pu, want := range before {
		r, err := t.getOK(ctx, pu)
		if err != nil {
			return fmt.Errorf("3 × TD after its removal: %w", err)
		}
		if !bytes.Equal(r.Body, want) {
			return fmt.Errorf("%s changed after its removal", pu)
		}
	}
	return nil
}

func checkP13(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	td := float64(pl.TargetDuration)
	uris := map[uint64]string{}
	record := func(pl *MediaPlaylist) error {
		for _, s := range pl.Segments {
			if prev, ok := uris[s.MSN]; ok && prev != s.URI {
				return fmt.Errorf("segment %d was %s, now %s: MEDIA-SEQUENCE does not follow removals", s.MSN, prev, s.URI)
			}
			uris[s.MSN] = s.URI
		}
		return nil
	}
	if err := record(pl); err != nil {
		return err
	}
	for range 3 {
		prev := pl
		last, _ := pl.LastComplete()
		if pl, _, err = t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d", last+1)); err != nil {
			return err
		}
		if pl.MediaSequence < prev.MediaSequence {
			return fmt.Errorf("MEDIA-SEQUENCE went back from %d to %d", prev.MediaSequence, pl.MediaSequence)
		}
		if err := record(pl); err != nil {
			return err
		}
		var dur float64
		for _, s := range pl.Segments {
			dur += s.Duration
		}
		if pl.MediaSequence > prev.MediaSequence && !pl.Ended && dur < 3*td-eps {
			return fmt.Errorf("segments removed while the playlist lasts %g s, under 3 × TD", dur)
		}
	}
	return nil
}

func checkP14(ctx context.Context, t *Target) error {
	u, pl, err := t.lowLatency(ctx)
	if err != nil {
		return err
	}
	// Across two segment boundaries at least: the part that ends a segment is the one a
	// server may list before it knows what comes next.
	for i, crossed := 0, 0; i < 3 || crossed < 2; i++ {
		if i == 40 {
			return fmt.Errorf("no two segment boundaries in %d blocking reloads", i)
		}
		hints := 0
		var hint string
		for _, h := range pl.PreloadHints {
			if h["TYPE"] == "PART" {
				hints++
				hint = unquote(h["URI"])
			}
		}
		if hints != 1 {
			return fmt.Errorf("%d EXT-X-PRELOAD-HINT:TYPE=PART, want 1", hints)
		}
		prevLast, _ := pl.LastPart()
		if pl, _, err = t.next(ctx, u, pl); err != nil {
			return err
		}
		var next *Part
		for _, p := range pl.Parts() {
			if p.MSN == prevLast.MSN && p.Index == prevLast.Index+1 || p.MSN == prevLast.MSN+1 && p.Index == 0 {
				next = p
				break
			}
		}
		if next == nil {
			return fmt.Errorf("the part after %s is not listed", prevLast.URI)
		}
		if next.URI != hint {
			return fmt.Errorf("preload hint was %s, the next part is %s", hint, next.URI)
		}
		if next.MSN != prevLast.MSN {
			crossed++
		}
	}
	return nil
}

func checkP15(ctx context.Context, t *Target) error {
	_, urls, err := t.multivariant(ctx)
	if err != nil {
		return err
	}
	if len(urls) < 2 {
		return fmt.Errorf("%w: a single rendition", ErrNotApplicable)
	}
	for i, u := range urls {
		pl, _, err := t.load(ctx, u, "")
		if err != nil {
			return err
		}
		low := pl.HasPartInf && len(pl.Parts()) > 0
		if low {
			// A blocking response must report the others as far as itself.
			if pl, _, err = t.next(ctx, u, pl); err != nil {
				return err
			}
		}
		seen := map[string]bool{}
		for _, r := range pl.Reports {
			uri := unquote(r["URI"])
			if uri == "" || strings.Contains(uri, "://") || strings.HasPrefix(uri, "/") {
				return fmt.Errorf("%s: report URI %q is not relative", u, uri)
			}
			ru, err := resolve(u, uri)
			if err != nil {
				return err
			}
			seen[stripQuery(ru)] = true
			if !low {
				continue
			}
			msn, part, err := reportPosition(r)
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			last, _ := pl.LastPart()
			if msn < last.MSN || msn == last.MSN && part < last.Index {
				return fmt.Errorf("%s: report for %s at %d.%d is behind the playlist's %d.%d", u, uri, msn, part, last.MSN, last.Index)
			}
			// The reported part must exist: asking for it answers at once.
			_, resp, err := t.load(ctx, ru, fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, part))
			if err != nil {
				return err
			}
			if err := within("a reload at a reported position", resp.LastByte, t.tol()); err != nil {
				return fmt.Errorf("%s: report for %s is ahead of it: %w", u, uri, err)
			}
		}
		for j, other := range urls {
			if j != i && !seen[stripQuery(other)] {
				return fmt.Errorf("%s: no EXT-X-RENDITION-REPORT for %s", u, other)
			}
		}
	}
	return nil
}

func reportPosition(r map[string]string) (uint64, int, error) {
	var msn uint64
	var part int
	if _, err := fmt.Sscanf(r["LAST-MSN"], "%d", &msn); err != nil {
		return 0, 0, fmt.Errorf("report LAST-MSN %q: %w", r["LAST-MSN"], err)
	}
	if _, err := fmt.Sscanf(r["LAST-PART"], "%d", &part); err != nil {
		return 0, 0, fmt.Errorf("report LAST-PART %q: %w", r["LAST-PART"], err)
	}
	return msn, part, nil
}

func stripQuery(u string) string {
	s, _, _ := strings.Cut(u, "?")
	return s
}
