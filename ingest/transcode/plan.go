package transcode

import (
	"fmt"
	"math"
)

// Channel types and presets, as the IVS API spells them.
const (
	TypeBasic      = "BASIC"
	TypeStandard   = "STANDARD"
	TypeAdvancedSD = "ADVANCED_SD"
	TypeAdvancedHD = "ADVANCED_HD"

	PresetHigher      = "HIGHER_BANDWIDTH_DELIVERY"
	PresetConstrained = "CONSTRAINED_BANDWIDTH_DELIVERY"
)

// SourceName is the rendition that carries the input as received.
const SourceName = "source"

// Input describes the received video.
type Input struct {
	Width, Height int
	FrameRate     float64
}

// Rung is one rendition of a ladder: the source passed through, or a transcoded quality.
type Rung struct {
	Name          string // URI-safe: "source", "480p30"
	Width, Height int
	FrameRate     float64
	// HalfRate keeps every other input frame (and every key frame), for 30 fps rungs of
	// 60 fps input; timestamps stay the input's, so key frames stay aligned.
	HalfRate bool
	// VideoBitrate is the target in bits per second; zero for the source.
	VideoBitrate int
	Source       bool
}

// rungSizes are the short-side sizes of the rungs IVS documents, largest first.
var rungSizes = []int{1080, 720, 480, 360, 160}

// standardKbps is the video bit rate of a STANDARD rung by short side, at up to 30 fps and
// above. IVS publishes the ladder's shape but not its bit rates; these are typical values for
// x264 at these sizes (they match Twitch's published transcodes where those exist).
var standardKbps = map[int][2]int{
	1080: {4500, 6000},
	720:  {2500, 3500},
	480:  {1200, 1500},
	360:  {630, 800},
	160:  {230, 300},
}

// IsTranscoded tells whether a channel type gets a ladder (every type but BASIC).
func IsTranscoded(channelType string) bool {
	switch channelType {
	case TypeStandard, TypeAdvancedSD, TypeAdvancedHD:
		return true
	}
	return false
}

// Plan returns the rungs of a channel's ladder for an input, highest first. STANDARD passes the
// source through as the top rung when it is within IVS's limits (1080p, 60 fps) and adds the
// lower rungs below it; ADVANCED_HD and ADVANCED_SD transcode every rung, capped at 720p and
// 480p and never above the input. The preset scales ADVANCED bit rates up (higher bandwidth,
// the default) or down (constrained bandwidth).
func Plan(channelType, preset string, in Input) ([]Rung, error) {
	if in.Width <= 0 || in.Height <= 0 {
		return nil, fmt.Errorf("input size %dx%d", in.Width, in.Height)
	}
	if !(in.FrameRate > 0) || math.IsInf(in.FrameRate, 0) {
		return nil, fmt.Errorf("input frame rate %v", in.FrameRate)
	}
	short := min(in.Width, in.Height)
	var top int // short side of the largest transcoded rung
	scale := 1.0
	var rungs []Rung
	switch channelType {
	case TypeStandard:
		if short <= 1080 && max(in.Width, in.Height) <= 1920 && in.FrameRate <= 61 {
			rungs = append(rungs, Rung{Name: SourceName, Width: in.Width, Height: in.Height, FrameRate: in.FrameRate, Source: true})
			top = short - 1 // strictly below the source: a rung of its own size adds nothing
		} else {
			top = min(1080, short) // never above the input
		}
	case TypeAdvancedHD, TypeAdvancedSD:
		top = 720
		if channelType == TypeAdvancedSD {
			top = 480
		}
		top = min(top, short)
		switch preset {
		case PresetConstrained:
			scale = 0.6
		case PresetHigher, "":
			scale = 1.25
		default:
			return nil, fmt.Errorf("preset %q", preset)
		}
	default:
		return nil, fmt.Errorf("channel type %q has no ladder", channelType)
	}
	for _, size := range rungSizes {
		if size <= top {
			rungs = append(rungs, newRung(in, size, len(rungs) == 0, scale))
		}
	}
	if len(rungs) == 0 {
		// An input smaller than every rung: one transcoded rung of its own size.
		rungs = append(rungs, newRung(in, short, true, scale))
	}
	return rungs, nil
}

// newRung sizes a rung of short side size. The top rung keeps the input frame rate up to
// 60 fps; lower rungs run at 30 fps or less, halving 50 and 60 fps input.
func newRung(in Input, size int, top bool, scale float64) Rung {
	r := Rung{FrameRate: in.FrameRate}
	limit := 31.0
	if top || size >= 720 {
		limit = 61
	}
	if r.FrameRate > limit {
		r.FrameRate /= 2
		r.HalfRate = true
	}
	long := evenRound(float64(size) * float64(max(in.Width, in.Height)) / float64(min(in.Width, in.Height)))
	if in.Width >= in.Height {
		r.Width, r.Height = long, evenRound(float64(size))
	} else {
		r.Width, r.Height = evenRound(float64(size)), long
	}
	fps := int(math.Round(r.FrameRate))
	r.Name = fmt.Sprintf("%dp%d", size, fps)
	kbps := bitrateFor(size)
	rate := kbps[0]
	if fps > 31 {
		rate = kbps[1]
	}
	r.VideoBitrate = int(math.Round(float64(rate)*scale)) * 1000
	return r
}

// bitrateFor interpolates the bit rates of a size between the documented ones.
func bitrateFor(size int) [2]int {
	if b, ok := standardKbps[size]; ok {
		return b
	}
	// Sizes off the ladder (small inputs): bits per pixel of the nearest smaller rung.
	ref := 160
	for _, s := range rungSizes {
		if s <= size {
			ref = s
			break
		}
	}
	b := standardKbps[ref]
	f := float64(size*size) / float64(ref*ref)
	return [2]int{int(float64(b[0]) * f), int(float64(b[1]) * f)}
}

// evenRound rounds to the nearest even number, as 4:2:0 encoders need, and at least 2.
func evenRound(v float64) int {
	return max(2, int(math.Round(v/2))*2)
}
