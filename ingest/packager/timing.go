package packager

import (
	"math"
	"slices"
	"time"
)

const (
	videoTimescale = 90000
	// partHeadroom is added to n frame durations to get the advertised PART-TARGET: RTMP carries
	// millisecond timestamps, so a part of n frames measures up to 1 ms more than n×frame.
	partHeadroom = 1.02
	// probeFrames and probeLimit bound how many frames are buffered to measure the frame rate
	// before the first part can be cut; past probeSpan, frames that come steadily end it.
	probeFrames = 12
	probeSpan   = 500 * time.Millisecond
	probeLimit  = 2 * time.Second
)

// toTicks converts a media-timeline instant to ticks of timescale ts, rounding to nearest. It
// splits seconds from the remainder so that day-long broadcasts cannot overflow int64.
func toTicks(d time.Duration, ts int64) int64 {
	s, r := int64(d/time.Second), int64(d%time.Second)
	if r < 0 {
		s, r = s-1, r+int64(time.Second)
	}
	return s*ts + (r*ts+int64(time.Second)/2)/int64(time.Second)
}

// toDuration converts ticks of timescale ts back to a duration, rounding up so that a
// successor starting at the returned instant never overlaps what was written.
func toDuration(ticks, ts int64) time.Duration {
	s, r := ticks/ts, ticks%ts
	if r < 0 {
		s, r = s-1, r+ts
	}
	return time.Duration(s)*time.Second + time.Duration((r*int64(time.Second)+ts-1)/ts)
}

// measureFrameDuration estimates the frame duration of a constant-rate stream from the decode
// timestamps of its first frames. When the last three intervals or more agree (steadyTail),
// their mean is taken: a browser's camera comes in fits before it settles, and those first
// intervals would pull the estimate off its steady rate. Otherwise the median rejects a
// dropped or duplicated frame, and the mean of the deltas near it averages out RTMP's
// millisecond rounding (29.97 fps arrives as 33/34 ms). Of an even count the lower middle is
// taken: a browser's encoder often pauses for half a second after its first two or three
// frames, and a frame duration guessed too long makes every frame a part and forces segment
// cuts at non-key frames, where one guessed too short only lets parts end on PART-TARGET.
func measureFrameDuration(dts []time.Duration) time.Duration {
	if tail := steadyTail(dts); len(tail) >= 4 {
		return (tail[len(tail)-1] - tail[0]) / time.Duration(len(tail)-1)
	}
	var deltas []time.Duration
	for i := 1; i < len(dts); i++ {
		if d := dts[i] - dts[i-1]; d > 0 {
			deltas = append(deltas, d)
		}
	}
	if len(deltas) == 0 {
		return 0
	}
	sorted := slices.Clone(deltas)
	slices.Sort(sorted)
	med := sorted[(len(sorted)-1)/2]
	var sum time.Duration
	n := 0
	for _, d := range deltas {
		if d >= med/2 && d <= med*3/2 {
			sum += d
			n++
		}
	}
	return sum / time.Duration(n)
}

// steadyTail returns the longest run of timestamps at the end of dts whose intervals agree
// within 15 %, wide enough for millisecond rounding at 60 fps (16/17 ms) and a browser's
// capture jitter, narrow enough to end at a dropped frame.
func steadyTail(dts []time.Duration) []time.Duration {
	if len(dts) < 2 {
		return dts
	}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	i := len(dts) - 1
	for ; i > 0; i-- {
		d := dts[i] - dts[i-1]
		if d <= 0 || max(hi, d)*100 > min(lo, d)*115 {
			break
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	return dts[i:]
}

// snapFrameDuration replaces a measured frame duration by the exact one of a broadcast frame
// rate within 0.5 %. hint (the SPS's VUI timing, when present and close) wins, because a few
// millisecond timestamps cannot tell 29.97 from 30 fps.
func snapFrameDuration(measured time.Duration, hint float64) time.Duration {
	if measured <= 0 {
		return measured
	}
	rate := float64(time.Second) / float64(measured)
	if hint > 0 && math.Abs(hint-rate)/rate < 0.01 {
		return time.Duration(math.Round(float64(time.Second) / hint))
	}
	rates := [...][2]int64{{24000, 1001}, {24, 1}, {25, 1}, {30000, 1001}, {30, 1}, {48, 1}, {50, 1},
		{60000, 1001}, {60, 1}, {120, 1}}
	best, bestErr := measured, 0.005
	for _, r := range rates {
		std := float64(r[0]) / float64(r[1])
		if e := math.Abs(std-rate) / std; e < bestErr {
			best, bestErr = time.Duration(r[1]*int64(time.Second)/r[0]), e
		}
	}
	return best
}

// advertisedPartTarget returns the PART-TARGET for parts of n frames of duration frame:
// n×frame plus headroom, rounded up to the millisecond.
func advertisedPartTarget(requested, frame time.Duration) (time.Duration, int) {
	n := max(1, int(math.Round(float64(requested)/float64(frame))))
	// Round up to the millisecond, forgiving a microsecond so that float error in n×frame
	// (60 fps: 12 × 16.666667 ms) does not cost a whole millisecond.
	us := float64(n) * float64(frame) * partHeadroom / float64(time.Microsecond)
	return time.Duration(math.Ceil((us-1)/1000)) * time.Millisecond, n
}

// framesPerPart returns how many frames fit in an already advertised PART-TARGET, for a
// successor whose frame rate may differ from its predecessor's.
func framesPerPart(target, frame time.Duration) int {
	return max(1, int(float64(target)/(float64(frame)*partHeadroom)+1e-9))
}

// segmentLimit returns the longest segment the packager lets grow while waiting for a key
// frame. A little above the target absorbs GOPs of 29.97 fps streams (60 frames = 2.002 s)
// without forcing a cut; it stays below half a second over the whole-second TARGETDURATION,
// so EXTINF still rounds to it.
func segmentLimit(target time.Duration) time.Duration {
	grace := min(target/10, 250*time.Millisecond)
	whole := (target + time.Second - 1) / time.Second * time.Second
	return min(target+grace, whole+time.Second/2-time.Millisecond)
}
