package llhlscheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

func checkD11(ctx context.Context, t *Target) error {
	u, pl, err := t.lowLatency(ctx)
	if err != nil {
		return err
	}
	for range 3 {
		// A fresh playlist names a part that does not exist yet.
		if pl, _, err = t.next(ctx, u, pl); err != nil {
			return err
		}
		if len(pl.PreloadHints) == 0 {
			return errors.New("no EXT-X-PRELOAD-HINT")
		}
		hu, err := resolve(u, unquote(pl.PreloadHints[0]["URI"]))
		if err != nil {
			return err
		}
		r, err := t.getOK(ctx, hu)
		if err != nil {
			return fmt.Errorf("hinted part: %w", err)
		}
		if r.Header.Get("Content-Length") == "" {
			return errors.New("hinted part sent without Content-Length: it was not held until whole")
		}
		if err := within("the hinted part's body after its headers", r.LastByte-r.FirstByte, min(t.tol(), 50*time.Millisecond)); err != nil {
			return err
		}
		if err := within("the hinted part", r.LastByte, secondsDur(pl.PartTarget)+t.tol()); err != nil {
			return err
		}
		again, err := t.getOK(ctx, hu)
		if err != nil {
			return err
		}
		if !bytes.Equal(again.Body, r.Body) {
			return errors.New("the hinted part changed after it was sent")
		}
	}
	return nil
}

func checkD12(ctx context.Context, t *Target) error {
	u, err := t.mediaURL(ctx)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, u, "")
	if err != nil {
		return err
	}
	var uris []string
	if last, ok := pl.LastPart(); ok {
		// Named like the listed parts, five past the last: never hinted.
		uris = append(uris, strings.Replace(last.URI, fmt.Sprintf("%d.%d", last.MSN, last.Index), fmt.Sprintf("%d.%d", last.MSN, last.Index+5), 1))
	}
	if n := len(pl.Segments); n > 0 {
		s := pl.Segments[n-1]
		uris = append(uris, strings.Replace(s.URI, fmt.Sprint(s.MSN), fmt.Sprint(s.MSN+5), 1))
	}
	uris = append(uris, "no-such-object.m4s")
	for _, ref := range uris {
		ru, err := resolve(u, ref)
		if err != nil {
			return err
		}
		r, err := t.get(ctx, ru)
		if err != nil {
			return err
		}
		if r.Status != http.StatusNotFound {
			return fmt.Errorf("%s: status %d, want 404", ref, r.Status)
		}
		if err := within("a 404", r.LastByte, t.tol()); err != nil {
			return err
		}
	}
	return nil
}

func checkD13(ctx context.Context, t *Target) error {
	marked := withQuery(t.URL, "llhlscheck=d13")
	mu, err := url.Parse(marked)
	if err != nil {
		return err
	}
	want := mu.Query()
	carries := func(where, ref string) error {
		ru, err := url.Parse(ref)
		if err != nil {
			return fmt.Errorf("%s: URI %q: %w", where, ref, err)
		}
		q := ru.Query()
		for k, vs := range want {
			if !slices.Equal(q[k], vs) {
				return fmt.Errorf("%s: URI %q lacks %s=%s", where, ref, k, strings.Join(vs, ","))
			}
		}
		for k := range q {
			if strings.HasPrefix(k, "_HLS_") {
				return fmt.Errorf("%s: URI %q carries %s", where, ref, k)
			}
		}
		return nil
	}
	r, err := t.getOK(ctx, marked)
	if err != nil {
		return err
	}
	m, err := ParseMultivariant(r.Body)
	if err != nil {
		return err
	}
	if len(m.Variants) == 0 {
		return errors.New("no variant")
	}
	for _, v := range m.Variants {
		if err := carries("multivariant", v.URI); err != nil {
			return err
		}
	}
	mediaURL, err := resolve(marked, m.Variants[0].URI)
	if err != nil {
		return err
	}
	pl, _, err := t.load(ctx, mediaURL, "")
	if err != nil {
		return err
	}
	d := fmt.Sprintf("_HLS_msn=%d&_HLS_skip=YES", pl.MaxMSN())
	if last, ok := pl.LastPart(); ok {
		d = fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d&_HLS_skip=YES", last.MSN, last.Index)
	}
	for _, dir := range []string{"", d} {
		pl, _, err := t.load(ctx, mediaURL, dir)
		if err != nil {
			return err
		}
		var refs []string
		for _, s := range pl.all() {
			refs = append(refs, s.Map)
			if s.URI != "" {
				refs = append(refs, s.URI)
			}
			for _, p := range s.Parts {
				refs = append(refs, p.URI)
			}
		}
		for _, h := range pl.PreloadHints {
			refs = append(refs, unquote(h["URI"]))
		}
		for _, rr := range pl.Reports {
			refs = append(refs, unquote(rr["URI"]))
		}
		refs = append(refs, pl.Prefetch...)
		for _, ref := range refs {
			if err := carries("media playlist ?"+dir, ref); err != nil {
				return err
			}
		}
	}
	return nil
}
