package archive

import (
	"cmp"
	"slices"
	"strings"

	"glasscast/archive/layout"
	"glasscast/archive/source"
)

// Resolution classes by height (reference §3): 160 ≤ LOWEST_RESOLUTION ≤ 360 < SD ≤ 480 < HD ≤
// 720 < FULL_HD ≤ 1080.
var classMax = map[string]int{"SD": 480, "HD": 720, "FULL_HD": 1080}

func classOf(height int) string {
	switch {
	case height <= 360:
		return "LOWEST_RESOLUTION"
	case height <= 480:
		return "SD"
	case height <= 720:
		return "HD"
	}
	return "FULL_HD"
}

// byQuality orders variants highest first.
func byQuality(vs []source.Variant) []source.Variant {
	out := slices.Clone(vs)
	slices.SortStableFunc(out, func(a, b source.Variant) int {
		return cmp.Or(cmp.Compare(b.Height, a.Height), cmp.Compare(b.Bandwidth, a.Bandwidth))
	})
	return out
}

// plan chooses the renditions to record from the first stream's variants, per the
// configuration's renditionConfiguration: ALL, NONE (audio only), or CUSTOM classes, where a
// missing class takes the best available rendition below it. A channel with one rendition
// records it whatever CUSTOM says, as IVS does for BASIC channels.
func (r *recording) plan(vs []source.Variant) []*renditionState {
	vs = byQuality(vs)
	sel := "ALL"
	var classes []string
	if rc := r.meta.Config.Rendition; rc != nil {
		sel, classes = rc.RenditionSelection, rc.Renditions
	}
	var chosen []source.Variant
	switch {
	case sel == "NONE":
		codecs := audioCodecs(vs[0].Codecs)
		return []*renditionState{{lr: &layout.Rendition{Name: layout.RenditionName(0, 0), Codecs: codecs,
			Bandwidth: 160000}, audioOnly: true}}
	case sel == "CUSTOM" && len(vs) > 1:
		for _, c := range classes {
			if v, ok := pickClass(vs, c); ok && !slices.ContainsFunc(chosen, func(x source.Variant) bool { return x.Rendition == v.Rendition }) {
				chosen = append(chosen, v)
			}
		}
		chosen = byQuality(chosen)
	default:
		chosen = vs
	}
	var out []*renditionState
	seen := map[string]bool{}
	for _, v := range chosen {
		name := layout.RenditionName(v.Height, v.FrameRate)
		if seen[name] {
			continue // two variants of one size and rate: IVS names cannot tell them apart
		}
		seen[name] = true
		out = append(out, &renditionState{lr: &layout.Rendition{Name: name, Width: v.Width, Height: v.Height,
			FrameRate: v.FrameRate, Codecs: v.Codecs, Bandwidth: v.Bandwidth}})
	}
	return out
}

// pickClass returns the variant of a resolution class: the highest inside it, else the best
// below it, else the lowest above it.
func pickClass(vs []source.Variant, class string) (source.Variant, bool) {
	if class == "LOWEST_RESOLUTION" {
		return vs[len(vs)-1], true
	}
	top := classMax[class]
	for _, v := range vs {
		if classOf(v.Height) == class {
			return v, true
		}
	}
	for _, v := range vs {
		if v.Height <= top {
			return v, true
		}
	}
	return vs[len(vs)-1], len(vs) > 0
}

// matchVariant finds a recorded rendition in a (later) stream's variants.
func matchVariant(vs []source.Variant, rs *renditionState) (source.Variant, bool) {
	if rs.audioOnly {
		return byQuality(vs)[0], len(vs) > 0
	}
	for _, v := range vs {
		if layout.RenditionName(v.Height, v.FrameRate) == rs.lr.Name {
			return v, true
		}
	}
	return source.Variant{}, false
}

// audioCodecs keeps the audio entries of a CODECS list.
func audioCodecs(codecs string) string {
	var keep []string
	for _, c := range strings.Split(codecs, ",") {
		c = strings.TrimSpace(c)
		if strings.HasPrefix(c, "mp4a") || c == "opus" {
			keep = append(keep, c)
		}
	}
	return strings.Join(keep, ",")
}

// thumbnailPlan picks the rendition thumbnails are taken from and the height to scale them
// to (0: as decoded), per thumbnailConfiguration.resolution.
func thumbnailPlan(rss []*renditionState, resolution string) (*renditionState, int) {
	var video []*renditionState
	for _, rs := range rss {
		if !rs.audioOnly && rs.lr.Height > 0 {
			video = append(video, rs)
		}
	}
	if len(video) == 0 {
		return nil, 0
	}
	// rss is highest first.
	switch resolution {
	case "":
		return video[0], 0
	case "LOWEST_RESOLUTION":
		return video[len(video)-1], 0
	}
	top := classMax[resolution]
	for _, rs := range video {
		if classOf(rs.lr.Height) == resolution {
			return rs, 0
		}
	}
	// None in the class: scale down the smallest rendition above it, else take the best below.
	for i := len(video) - 1; i >= 0; i-- {
		if video[i].lr.Height > top {
			return video[i], top
		}
	}
	return video[0], 0
}
