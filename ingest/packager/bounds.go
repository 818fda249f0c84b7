package packager

import "time"

// Audio waits in memory for the video: in the probe until the frame rate is known, and after
// that in the part being built, which only a video frame ends. Video that stops while the
// audio goes on (a camera that died, a publisher that sends audio only, or video messages
// that carry SEI only) would have its audio held for as long as the connection lasts, and a
// hostile publisher's "audio" frames can be megabytes each. The limits here bound both, so one
// channel cannot exhaust the memory of every channel on the node.
const (
	// maxAudioFrame is the largest audio frame taken. An AAC access unit holds at most 6144
	// bits per channel (the decoder's input buffer, ISO/IEC 14496-3), 6 KiB for 7.1; a
	// 120 ms Opus packet at 510 kb/s, the codec's highest rate, 7.5 KiB.
	maxAudioFrame = 8 << 10
	// probeAudioLimit ends the probe once this much audio (by the codec's frame durations)
	// has come after the first key frame, however few video frames came with it. It is past
	// probeLimit, by which the probe of any stream of 1 fps or more has ended: a live source's
	// video that has not shown a rate by then has stalled, and PART-TARGET is fixed as Close
	// fixes it for a publisher gone early. The part cap below then bounds the audio.
	probeAudioLimit = probeLimit + time.Second
	// maxPartAudio bounds the audio the part being built holds (by the codec's frame
	// durations). A part ends at PART-TARGET (200 ms by default) or, frames missing, at the
	// next video frame, so only video that stalls comes near: audio past this is dropped
	// until a video frame ends the part. 10 s keeps all the audio of a pause a viewer sits
	// through (an encoder or camera stalling for a few seconds, as the 3 s of TestVideoPause),
	// and is 160 kB of 128 kb/s AAC.
	maxPartAudio = 10 * time.Second
	// maxHeldAudioBytes bounds the bytes of that audio, and of the probe's after its first
	// key frame: more than 10 s of the highest Opus rate, so only input with frames near
	// maxAudioFrame reaches it before maxPartAudio.
	maxHeldAudioBytes = 1 << 20
)

// capAudio tells whether audio frame f, which is not the lead track's, must be dropped
// because the part being built holds the most audio it may (maxPartAudio,
// maxHeldAudioBytes). It counts the drop, and logs the first of each part: once a stall.
//
// While it drops, capIn follows the audio's input clock as long as it runs on (a jump is
// left out, as audioDTS leaves it out): when the video comes back, audioFollowed must see
// that the audio moved on with it, or the pause would pass for a clock jump and the timeline
// would be rebased over it, the audio after it then overlapping what was kept.
func (s *segmenter) capAudio(f frame) bool {
	p := s.p
	t := p.audio
	if s.heldTicks+f.nominal <= toTicks(maxPartAudio, t.timescale) && s.heldBytes+len(f.payload) <= maxHeldAudioBytes {
		return false
	}
	if !s.capped {
		s.capped, s.capIn = true, f.dts
		if t.pending != nil {
			s.capIn = t.pendingIn
		}
		p.log.Warn("video stalled; dropping audio until it resumes",
			"held", toDuration(s.heldTicks, t.timescale), "bytes", s.heldBytes)
	}
	if d := f.dts - s.capIn; d > 0 && d <= toDuration(s.jumpTicks, p.lead.timescale) {
		s.capIn = f.dts
	}
	p.count(func(st *Stats) { st.DroppedAudio++ })
	return true
}

// holdAudio notes audio frame f placed in the part being built.
func (s *segmenter) holdAudio(f frame) {
	s.heldTicks += f.nominal
	s.heldBytes += len(f.payload)
}

// partOut starts the count of held audio again after a part went out: the pending audio
// frame, if any, goes in the next one.
func (s *segmenter) partOut() {
	s.heldTicks, s.heldBytes, s.capped = 0, 0, false
	if a := s.p.audio; a != nil && a != s.p.lead && a.pending != nil {
		s.heldTicks, s.heldBytes = a.pendingNominal, len(a.pending.Payload)
	}
}

// audioIn is the input time the non-lead audio has reached: that of its pending frame, or of
// a later one dropped at the cap.
func (s *segmenter) audioIn() time.Duration {
	if s.capped {
		return s.capIn
	}
	return s.p.audio.pendingIn
}

// probeFull tells whether the probe holds as much audio after the first key frame as it may
// (probeAudioLimit, maxHeldAudioBytes), counting in audio frame f; it logs when it does.
func (p *Packager) probeFull(f frame) bool {
	p.probeTicks += f.nominal
	p.probeBytes += len(f.payload)
	if p.probeTicks < toTicks(probeAudioLimit, p.audio.timescale) && p.probeBytes < maxHeldAudioBytes {
		return false
	}
	p.log.Warn("video stalled while its frame rate was measured; starting with the frames it sent",
		"videoFrames", len(p.probeDTS), "audio", toDuration(p.probeTicks, p.audio.timescale), "bytes", p.probeBytes)
	return true
}
