package packager

import (
	"encoding/binary"
	"math"
	"time"
)

// maxProbeAudio bounds the audio kept while waiting for the first video key frame (about 1.4 s
// of AAC): only audio from the key frame on is used, so older frames are dead weight.
const maxProbeAudio = 64

// buffer holds input until the frame rate of the leading track is known, because the advertised
// PART-TARGET depends on it and no part may be emitted before it is fixed. What it holds is
// bounded: audio before the first key frame by maxProbeAudio, after it by probeFull, which
// ends the probe when video stalls.
func (p *Packager) buffer(f frame) error {
	if f.video {
		if !p.keySeen {
			if !f.key {
				p.count(func(s *Stats) { s.DroppedVideo++ })
				return nil
			}
			p.keySeen = true
			p.firstWall, p.firstDTS = p.cfg.Now(), f.dts
			p.probeParams = f.params
		}
		// The caller's NALUs are only borrowed; frames that wait must own their bytes.
		f.payload, f.au = appendAVCC(nil, f.au, p.h265), nil
		p.probeDTS = append(p.probeDTS, f.dts)
	} else if p.video == nil && len(p.probe) == 0 {
		p.firstWall, p.firstDTS = p.cfg.Now(), f.dts
	}
	p.probe = append(p.probe, f)
	switch {
	case f.video || p.video == nil:
		if p.probed() {
			return p.start()
		}
	case !p.keySeen:
		if len(p.probe) > maxProbeAudio {
			p.probe = append(p.probe[:0], p.probe[1:]...)
			p.count(func(s *Stats) { s.DroppedAudio++ })
		}
	case p.probeFull(f):
		return p.start()
	}
	return nil
}

// probed tells whether enough of the leading track has arrived to measure its frame duration.
// Only a video frame changes the answer, and it reads the probe's video timestamps, never the
// whole probe: at most probeFrames of them.
func (p *Packager) probed() bool {
	if p.video == nil {
		return len(p.probe) > 0 // an audio codec states its frame duration
	}
	dts := p.probeDTS
	n := len(dts)
	if n >= probeFrames || n >= 3 && dts[n-1]-dts[0] >= probeLimit {
		return true
	}
	// Past probeSpan the rate is taken once three intervals in a row agree: a browser's
	// first frames come in fits (two or three, a pause, one more) before its camera settles,
	// and a rate measured from those fixes a PART-TARGET that its steady rate cannot fill.
	if n >= 4 && dts[n-1]-dts[0] >= probeSpan && len(steadyTail(dts)) >= 4 {
		return true
	}
	// Three frames that agree with the SPS's VUI frame rate are enough (start uses that rate
	// then): the first part need not wait for twelve frames, 0.4 s at 30 fps.
	if n >= 3 {
		if info, err := p.describeVideo(p.probeParams); err == nil && info.fps > 0 {
			hinted := time.Duration(math.Round(float64(time.Second) / info.fps))
			return snapFrameDuration(measureFrameDuration(dts), info.fps) == hinted
		}
	}
	return false
}

// start fixes the frame duration and PART-TARGET, emits the init segment and replays the
// buffered input. Close calls it with whatever was buffered, for a publisher that left early.
func (p *Packager) start() error {
	var fd, from time.Duration
	var params *videoParams
	if p.video != nil {
		if len(p.probeDTS) == 0 {
			p.probe = nil
			return nil // no key frame ever came: nothing can be played
		}
		info, err := p.describeVideo(p.probeParams)
		if err != nil {
			return err
		}
		fd = snapFrameDuration(measureFrameDuration(p.probeDTS), info.fps)
		if fd <= 0 && info.fps > 0 {
			fd = time.Duration(float64(time.Second) / info.fps)
		}
		if fd <= 0 {
			fd = time.Second / 30 // a single frame and no VUI timing: any guess is as good
		}
		from, params = p.probeDTS[0], p.probeParams
	} else {
		if len(p.probe) == 0 {
			return nil
		}
		from = p.probe[0].dts
		fd = toDuration(p.probe[0].nominal, p.audio.timescale)
	}

	target, n := advertisedPartTarget(p.cfg.PartTarget, fd)
	if t := p.cfg.Start.PartTarget; t > 0 {
		// A successor keeps its predecessor's PART-TARGET: playlists must never change it.
		target, n = t, framesPerPart(t, fd)
	}
	p.frameDur, p.n = fd, n
	p.partTarget.Store(int64(target))
	p.ready = true

	avg := p.estimateBandwidth(from, fd)
	probe := p.probe
	p.probe, p.probeDTS, p.probeParams = nil, nil, nil
	if err := p.seg.begin(from, p.firstWall, params, avg); err != nil {
		return err
	}
	for _, f := range probe {
		if err := p.seg.push(f); err != nil {
			return err
		}
	}
	return nil
}

// estimateBandwidth returns a mean bit rate from the probed input. It includes a key frame, so
// it leans high; the origin replaces it with measured segment sizes.
func (p *Packager) estimateBandwidth(from, fd time.Duration) int {
	var videoBytes, audioBytes int
	var last time.Duration
	for _, f := range p.probe {
		if f.dts < from {
			continue
		}
		if f.video {
			videoBytes += len(f.payload)
			last = max(last, f.dts)
		} else {
			audioBytes += len(f.payload)
		}
	}
	bits := 0.0
	if p.video != nil {
		bits += float64(videoBytes*8) / (last - from + fd).Seconds()
	}
	if p.audio != nil {
		// A few audio frames say little about a variable bit rate; assume a common one.
		bits += 128000
	}
	return int(math.Round(bits))
}

// appendAVCC appends an access unit in the length-prefixed form of an avc1/hvc1 sample,
// leaving out what the init segment carries or players do not need: parameter sets and access
// unit delimiters.
func appendAVCC(dst []byte, au [][]byte, h265 bool) []byte {
	for _, nalu := range au {
		if len(nalu) == 0 || outOfBand(nalu, h265) {
			continue
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nalu)))
		dst = append(dst, nalu...)
	}
	return dst
}

func outOfBand(nalu []byte, h265 bool) bool {
	if h265 {
		t := nalu[0] >> 1 & 0x3f
		return t >= 32 && t <= 35 // VPS, SPS, PPS, AUD
	}
	t := nalu[0] & 0x1f
	return t >= 7 && t <= 9 // SPS, PPS, AUD
}
