package llhlscheck

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"strings"
	"time"
)

// eps absorbs the rounding of durations written with a few decimals.
const eps = 1e-6

func playlistChecks() []Check {
	return []Check{
		{"P1", "EXT-X-PART-INF present when parts are", Live, checkP1},
		{"P2", "part durations within PART-TARGET and at least 85 % of it", Live, checkP2},
		{"P3", "INDEPENDENT=YES exactly on parts with an independent frame", Live, checkP3},
		{"P4", "CAN-BLOCK-RELOAD=YES", Live, checkP4},
		{"P5", "PART-HOLD-BACK at least 3 × the largest PART-TARGET", Live, checkP5},
		{"P6", "HOLD-BACK at least 3 × TARGETDURATION", Live, checkP6},
		{"P7", "CAN-SKIP-UNTIL at least 6 × TARGETDURATION", Live, checkP7},
		{"P8", "EXT-X-SERVER-CONTROL identical in every rendition", Live, checkP8},
		{"P9", "TARGETDURATION constant, EXTINF rounded within it", Live, checkP9},
		{"P10", "parts within one PART-TARGET, segments within 1.5 × TD", Live, checkP10},
		{"P11", "listed parts download at once", Live, checkP11},
		{"P12", "parts listed for 3 × TD, downloadable 3 × TD after removal", Live, checkP12},
		{"P13", "playlist never shrinks; MEDIA-SEQUENCE follows removals", Live, checkP13},
		{"P14", "exactly one PRELOAD-HINT naming the next part", Live, checkP14},
		{"P15", "rendition reports for every other rendition, up to date", Live, checkP15},
		{"P16", "segment tags before the segment's first EXT-X-PART", Live, checkP16},
		{"P17", "PROGRAM-DATE-TIME on every segment, consistent across renditions", Live, checkP17},
		{"P18", "EXT-X-VERSION as needed, no higher", Live, checkP18},
		{"P19", "playlists gzipped when accepted", Live, checkP19},
	}
}

// forEachVariant loads every rendition's media playlist.
func (t *Target) forEachVariant(ctx context.Context, f func(u string, pl *MediaPlaylist) error) error {
	_, urls, err := t.multivariant(ctx)
	if err != nil {
		return err
	}
	for _, u := range urls {
		pl, _, err := t.load(ctx, u, "")
		if err != nil {
			return err
		}
		if err := f(u, pl); err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
	}
	return nil
}

func checkP1(ctx context.Context, t *Target) error {
	parts := false
	err := t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		if len(pl.Parts()) == 0 {
			return nil
		}
		parts = true
		if !pl.HasPartInf || !(pl.PartTarget > 0) {
			return errors.New("EXT-X-PART without EXT-X-PART-INF:PART-TARGET")
		}
		return nil
	})
	if err == nil && !parts {
		return fmt.Errorf("%w: no EXT-X-PART", ErrNotApplicable)
	}
	return err
}

func checkP2(ctx context.Context, t *Target) error {
	if _, _, err := t.lowLatency(ctx); err != nil {
		return err
	}
	return t.forEachVariant(ctx, func(u string, pl *MediaPlaylist) error {
		pt := pl.PartTarget
		var parts []listedPart
		for _, s := range pl.all() {
			for _, p := range s.Parts {
				parts = append(parts, listedPart{s, p})
			}
		}
		for i, l := range parts {
			s, p := l.seg, l.part
			if p.Duration > pt+eps {
				return fmt.Errorf("part %s lasts %g s, PART-TARGET %g", p.URI, p.Duration, pt)
			}
			lastOfSegment := s != pl.Pending && p == s.Parts[len(s.Parts)-1]
			beforeGap := i+1 < len(parts) && parts[i+1].seg == s && parts[i+1].part.Gap
			if p.Duration >= 0.85*pt-eps || p.Independent || lastOfSegment || p.Gap || beforeGap {
				continue
			}
			if !t.VariableFrameRate {
				return fmt.Errorf("part %s lasts %g s, under 85 %% of PART-TARGET %g", p.URI, p.Duration, pt)
			}
			// The frame grid of a variable-rate source may leave no cut between 85 % and 100 %:
			// a short part is the server's fault only if the frame after it would have fit.
			partURI, mapURI := "", s.Map
			if i+1 < len(parts) {
				partURI, mapURI = parts[i+1].part.URI, parts[i+1].seg.Map
			} else if len(pl.PreloadHints) > 0 {
				partURI = unquote(pl.PreloadHints[0]["URI"])
			}
			next, err := t.firstFrame(ctx, u, partURI, mapURI)
			if err != nil {
				return fmt.Errorf("the part after short part %s: %w", p.URI, err)
			}
			if p.Duration+next.Seconds() <= pt+eps {
				return fmt.Errorf("part %s lasts %g s, under 85 %% of PART-TARGET %g, though the frame after it (%v) would fit",
					p.URI, p.Duration, pt, next)
			}
		}
		return nil
	})
}

// listedPart is an EXT-X-PART with the segment it belongs to.
type listedPart struct {
	seg  *Segment
	part *Part
}

// firstFrame returns how long the first frame of a part lasts (of its video, else of its
// first track), reading the timescale from the init segment mapURI. Both URIs are relative
// to the media playlist u.
func (t *Target) firstFrame(ctx context.Context, u, partURI, mapURI string) (time.Duration, error) {
	if partURI == "" || mapURI == "" {
		return 0, errors.New("no part or no EXT-X-MAP to read it by")
	}
	var bodies [2][]byte
	for i, ref := range []string{mapURI, partURI} {
		abs, err := resolve(u, ref)
		if err != nil {
			return 0, err
		}
		r, err := t.getOK(ctx, abs)
		if err != nil {
			return 0, err
		}
		bodies[i] = r.Body
	}
	return firstSampleDuration(bodies[0], bodies[1])
}

func checkP3(ctx context.Context, t *Target) error {
	if _, _, err := t.lowLatency(ctx); err != nil {
		return err
	}
	return t.forEachVariant(ctx, func(u string, pl *MediaPlaylist) error {
		segs := pl.all()
		if len(segs) == 0 || segs[len(segs)-1].Map == "" {
			return errors.New("no EXT-X-MAP")
		}
		initURL, err := resolve(u, segs[len(segs)-1].Map)
		if err != nil {
			return err
		}
		init, err := t.getOK(ctx, initURL)
		if err != nil {
			return err
		}
		video, err := videoTracks(init.Body)
		if err != nil {
			return fmt.Errorf("init %s: %w", initURL, err)
		}
		if len(video) == 0 {
			return fmt.Errorf("%w: no video track", ErrNotApplicable)
		}
		checked := 0
		for _, s := range segs[max(0, len(segs)-2):] {
			for _, p := range s.Parts {
				pu, err := resolve(u, p.URI)
				if err != nil {
					return err
				}
				r, err := t.getOK(ctx, pu)
				if err != nil {
					return err
				}
				indep, err := hasSyncSample(r.Body, video)
				if err != nil {
					return fmt.Errorf("part %s: %w", p.URI, err)
				}
				if indep != p.Independent {
					return fmt.Errorf("part %s: INDEPENDENT=YES is %v but it has an independent frame: %v", p.URI, p.Independent, indep)
				}
				checked++
			}
		}
		if checked == 0 {
			return errors.New("no part to check")
		}
		return nil
	})
}

func checkP4(ctx context.Context, t *Target) error {
	return t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		if pl.ServerControl["CAN-BLOCK-RELOAD"] != "YES" {
			return fmt.Errorf("EXT-X-SERVER-CONTROL:%s lacks CAN-BLOCK-RELOAD=YES", pl.ServerControlLine)
		}
		return nil
	})
}

func checkP5(ctx context.Context, t *Target) error {
	if _, _, err := t.lowLatency(ctx); err != nil {
		return err
	}
	var maxPT float64
	var holdBacks []float64
	err := t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		if !pl.HasPartInf {
			return nil
		}
		maxPT = max(maxPT, pl.PartTarget)
		phb := seconds(pl.ServerControl, "PART-HOLD-BACK")
		if math.IsNaN(phb) {
			return errors.New("PART-HOLD-BACK missing with EXT-X-PART-INF")
		}
		if phb < 2*pl.PartTarget-eps {
			return fmt.Errorf("PART-HOLD-BACK %g under 2 × PART-TARGET %g (MUST)", phb, pl.PartTarget)
		}
		holdBacks = append(holdBacks, phb)
		return nil
	})
	if err != nil {
		return err
	}
	for _, phb := range holdBacks {
		if phb < 3*maxPT-eps {
			return fmt.Errorf("PART-HOLD-BACK %g under 3 × the largest PART-TARGET %g (SHOULD)", phb, maxPT)
		}
	}
	return nil
}

func checkP6(ctx context.Context, t *Target) error {
	return t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		if hb := seconds(pl.ServerControl, "HOLD-BACK"); !math.IsNaN(hb) && hb < 3*float64(pl.TargetDuration)-eps {
			return fmt.Errorf("HOLD-BACK %g under 3 × TARGETDURATION %d", hb, pl.TargetDuration)
		}
		return nil
	})
}

func checkP7(ctx context.Context, t *Target) error {
	return t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		csu := seconds(pl.ServerControl, "CAN-SKIP-UNTIL")
		if _, ok := pl.ServerControl["CAN-SKIP-DATERANGES"]; ok && math.IsNaN(csu) {
			return errors.New("CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL")
		}
		if !math.IsNaN(csu) && csu < 6*float64(pl.TargetDuration)-eps {
			return fmt.Errorf("CAN-SKIP-UNTIL %g under 6 × TARGETDURATION %d", csu, pl.TargetDuration)
		}
		return nil
	})
}

func checkP8(ctx context.Context, t *Target) error {
	var first map[string]string
	return t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		if pl.ServerControl == nil {
			return errors.New("no EXT-X-SERVER-CONTROL")
		}
		if first == nil {
			first = pl.ServerControl
			return nil
		}
		if !maps.Equal(first, pl.ServerControl) {
			return fmt.Errorf("EXT-X-SERVER-CONTROL %v differs from the first rendition's %v", pl.ServerControl, first)
		}
		return nil
	})
}

func checkP9(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	td := pl.TargetDuration
	if td < 0 {
		return errors.New("no EXT-X-TARGETDURATION")
	}
	// Watch two more segments complete.
	for range 3 {
		for _, s := range pl.Segments {
			if int(math.Round(s.Duration)) > td {
				return fmt.Errorf("segment %d lasts %g s, over TARGETDURATION %d", s.MSN, s.Duration, td)
			}
		}
		if pl.TargetDuration != td {
			return fmt.Errorf("TARGETDURATION changed from %d to %d", td, pl.TargetDuration)
		}
		last, _ := pl.LastComplete()
		if pl, _, err = t.load(ctx, u, fmt.Sprintf("_HLS_msn=%d", last+1)); err != nil {
			return err
		}
	}
	return nil
}

func checkP16(ctx context.Context, t *Target) error {
	return t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		if len(pl.OrderErrors) > 0 {
			return errors.New(strings.Join(pl.OrderErrors, "; "))
		}
		return nil
	})
}

func checkP17(ctx context.Context, t *Target) error {
	pdts := map[uint64]time.Time{}
	return t.forEachVariant(ctx, func(_ string, pl *MediaPlaylist) error {
		for _, s := range pl.all() {
			if s.PDT.IsZero() {
				return fmt.Errorf("segment %d has no EXT-X-PROGRAM-DATE-TIME", s.MSN)
			}
			if prev, ok := pdts[s.MSN]; ok && absDur(prev.Sub(s.PDT)) > time.Millisecond {
				return fmt.Errorf("segment %d starts at %v here, %v in another rendition", s.MSN, s.PDT, prev)
			}
			pdts[s.MSN] = s.PDT
		}
		return nil
	})
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// requiredVersion is the lowest EXT-X-VERSION the playlist's content allows (draft section 8).
func requiredVersion(pl *MediaPlaylist) int {
	v := 1
	for _, s := range pl.all() {
		if s.Duration != math.Trunc(s.Duration) && s != pl.Pending {
			v = max(v, 3)
		}
		if s.Map != "" {
			v = max(v, 5)
			if !pl.IFramesOnly {
				v = max(v, 6)
			}
		}
	}
	if pl.HasByteRange || pl.IFramesOnly {
		v = max(v, 4)
	}
	if pl.HasDefine {
		v = max(v, 8)
	}
	if pl.Skip != nil {
		v = max(v, 9)
		if pl.Skip.HasRecentlyRemoved {
			v = max(v, 10)
		}
	}
	if pl.HasQueryDef {
		v = max(v, 11)
	}
	return v
}

func checkP18(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	for _, d := range []string{"", "_HLS_skip=YES", "_HLS_skip=v2"} {
		pl, _, err := t.load(ctx, u, d)
		if err != nil {
			return err
		}
		if want := requiredVersion(pl); pl.Version != want {
			return fmt.Errorf("?%s: EXT-X-VERSION %d, its tags need exactly %d", d, pl.Version, want)
		}
	}
	return nil
}

func checkP19(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	for _, pu := range []string{t.URL, u} {
		r, err := t.get(ctx, pu, "Accept-Encoding", "gzip")
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK || r.Header.Get("Content-Encoding") != "gzip" {
			return fmt.Errorf("%s with Accept-Encoding: gzip: status %d, Content-Encoding %q", pu, r.Status, r.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.Body))
		if err != nil {
			return fmt.Errorf("%s: %w", pu, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return fmt.Errorf("%s: %w", pu, err)
		}
		if !bytes.HasPrefix(plain, []byte("#EXTM3U")) {
			return fmt.Errorf("%s: gzipped body is not a playlist", pu)
		}
		if !strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Vary"), ",")), "accept-encoding") {
			return fmt.Errorf("%s: gzipped response without Vary: Accept-Encoding", pu)
		}
		r, err = t.get(ctx, pu, "Accept-Encoding", "identity")
		if err != nil {
			return err
		}
		if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
			return fmt.Errorf("%s: Content-Encoding %q though the client accepts only identity", pu, ce)
		}
	}
	return nil
}
