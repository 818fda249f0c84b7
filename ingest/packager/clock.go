package packager

import "time"

// The functions here map input timestamps (RTMP's, in milliseconds, from the publisher's
// clock) onto the output timeline, which must stay continuous through rounding, lost frames,
// pauses and clock jumps.

// ticks maps an input timestamp onto t's output timeline.
func (s *segmenter) ticks(t *track, in time.Duration) int64 {
	return toTicks(in-s.inBase+s.outBase, t.timescale)
}

// videoDTS places a video frame at its decode time, or just after the frame before it when
// that one was placed after its own time (see the in-order case below). It drops a frame
// decoded out of order and rebases the timeline over a clock jump, which it tells from a pause
// by the audio: after a pause the audio has moved on with the video.
func (s *segmenter) videoDTS(t *track, f frame) (int64, bool) {
	dts := s.ticks(t, f.dts)
	if t.pending == nil && !s.early {
		return dts, true
	}
	// After an early part the frame it ended with, no longer pending, is the previous one.
	switch d := dts - t.pendingDTS; {
	case d < -s.jumpTicks || d > s.jumpTicks && !s.audioFollowed(f.dts, t.pendingIn):
		// From where the pending frame was placed, which is off its own time after an early part.
		s.rebase(f.dts-t.pendingIn+toDuration(s.shift, t.timescale), s.p.frameDur)
		return s.ticks(t, f.dts), true
	case d > s.jumpTicks:
		// Keep the gap, or the audio would fall behind for good. Its part and segment run
		// long (counted in LongParts).
		s.p.log.Warn("video paused; keeping its gap", "gap", f.dts-t.pendingIn)
	case d <= 0 && s.shift < 0 && f.dts > t.pendingIn:
		// In order, but the previous frame was placed later than it came: where the early
		// part before it ended, foreseeing a longer interval than came (the rate went up).
		// This frame goes just after it, not dropped, since the frames after it may not
		// decode without it; the frames go so until their own times pass the placed ones.
		return t.pendingDTS + s.tolTicks, true
	case d <= 0:
		s.p.count(func(st *Stats) { st.DroppedVideo++ })
		return 0, false
	}
	return dts, true
}

// audioDTS places an audio frame by counting the codec's frame durations, which keeps the
// track continuous despite millisecond timestamps, and follows the input timestamps only
// when they leave that count by more than a frame (frames lost or dropped by the publisher).
func (s *segmenter) audioDTS(t *track, f frame, lead bool) (int64, bool) {
	actual := s.ticks(t, f.dts)
	if t.pending == nil {
		if actual < toTicks(s.outBase, t.timescale) {
			s.p.count(func(st *Stats) { st.DroppedAudio++ }) // before the video starts
			return 0, false
		}
		return actual, true
	}
	expected := t.pendingDTS + t.pendingNominal
	switch diff := actual - expected; {
	case diff >= -t.pendingNominal && diff <= t.pendingNominal:
		return expected, true
	case diff < 0 || !lead && diff > s.jumpTicks && !s.videoFollows(t, actual, expected):
		// Overlapping audio, or audio whose clock jumped before the video's did.
		s.p.count(func(st *Stats) { st.DroppedAudio++ })
		return 0, false
	case lead && diff > s.jumpTicks:
		s.rebase(f.dts-t.pendingIn, toDuration(t.pendingNominal, t.timescale))
		return expected, true
	default:
		return actual, true
	}
}

// audioFollowed tells whether the audio's input timestamps moved on to the video's new one
// (now) from the previous one (prev): the video paused rather than the input clock jumping.
func (s *segmenter) audioFollowed(now, prev time.Duration) bool {
	a := s.p.audio
	if a == nil || a == s.p.lead || a.pending == nil {
		return false
	}
	in := s.audioIn()
	return (now - in).Abs() < (in - prev).Abs()
}

// videoFollows tells whether a long gap in the audio track is a pause in the audio rather
// than its clock jumping ahead of the video's: the video is nearer to where the audio resumes.
func (s *segmenter) videoFollows(a *track, actual, expected int64) bool {
	v := s.p.video
	if v == nil || v.pending == nil {
		return true
	}
	now := toTicks(toDuration(v.pendingDTS, v.timescale), a.timescale)
	return max(actual-now, now-actual) < max(expected-now, now-expected)
}

// rebase shifts the input-to-media mapping after the input clock jumped by gap where step was
// expected, so the timeline continues without a hole.
func (s *segmenter) rebase(gap, step time.Duration) {
	s.inBase += gap - step
	s.p.count(func(st *Stats) { st.TimestampJumps++ })
	s.p.log.Warn("input timestamps jumped; timeline rebased", "gap", gap)
}
