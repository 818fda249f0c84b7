package transcode

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// supervise runs on the publisher's goroutine after each video frame: it ends a run that
// died, stalled, fell behind or lost alignment (its renditions then follow the source), and
// starts the next one after a backoff, on a segment boundary.
func (l *Ladder) supervise(ctx context.Context, now time.Time) {
	if !l.planned || len(l.slots) == 0 || l.disabled {
		return
	}
	if names := l.gate.takeSwitched(); len(names) > 0 && l.recovering {
		l.recovering = false
		l.log.Info("renditions transcoded again", "renditions", names)
		l.cfg.Event(EventRecovery, "")
	}
	if r := l.run; r != nil {
		if why, code := l.check(r, now); why != "" {
			l.fail(ctx, why, code, now)
		}
		return
	}
	if now.Before(l.nextStart) || !l.replay.valid {
		return
	}
	l.startRun(ctx, now)
}

// check returns why run r must end, or "".
func (l *Ladder) check(r *run, now time.Time) (string, string) {
	if r.proc.hasExited() {
		return "ffmpeg " + r.proc.exitReason(), CodeExited
	}
	if r.proc.full.Load() {
		return "ffmpeg did not keep up: its input queue is full", CodeTooSlow
	}
	if name := l.gate.misaligned(); name != "" {
		return "rendition " + name + " lost alignment with the source", CodeMisaligned
	}
	slowest := r.fedIn
	all := true
	for _, s := range l.slots {
		if err := s.failure(); err != nil {
			return "rendition " + s.rung.Name + ": " + err.Error(), CodePackaging
		}
		if !s.produced.Load() {
			all = false
			if now.Sub(r.started) > startupTimeout {
				return fmt.Sprintf("ffmpeg produced no %s frame in %v", s.rung.Name, startupTimeout), CodeStalled
			}
			continue
		}
		slowest = min(slowest, time.Duration(s.lastIn.Load()))
	}
	if !all {
		return "", ""
	}
	lag := r.fedIn - slowest
	if lag > l.cfg.MaxLag {
		return fmt.Sprintf("ffmpeg is %.1f s behind the input", lag.Seconds()), CodeTooSlow
	}
	switch {
	case lag < starveLag:
		r.caughtUp = true
	case r.caughtUp || now.Sub(r.started) > catchUpGrace:
		// A run starts up to a segment back; lag counts once it had time to catch up.
		l.starve(now)
	}
	r.fed.forget(tsOffset + ticks90(slowest-r.seg.dts) - 90000)
	if l.healthySince.IsZero() {
		l.healthySince = now
	} else if l.failures > 0 && now.Sub(l.healthySince) > healthyReset {
		l.failures = 0
	}
	return "", ""
}

// fail ends the current run; its renditions follow the source until the next one is ready.
func (l *Ladder) fail(ctx context.Context, why, code string, now time.Time) {
	r := l.run
	l.run = nil
	l.log.Warn("transcoder failed; renditions follow the source until it is back", "reason", why, "run", r.id)
	r.proc.stop(0)
	for _, s := range l.slots {
		s.stop(ctx, r.id, false)
	}
	l.gate.fallBack(ctx)
	if code == CodeTooSlow {
		l.starve(now)
	}
	if code == CodeTooSlow && l.preset < len(x264Presets)-1 {
		l.preset++
		l.log.Info("the next transcoder run uses a faster x264 preset", "preset", x264Presets[l.preset])
	}
	l.backOff(code, now)
}

// starve reports the stream STARVING for a while: its renditions fall behind real time.
func (l *Ladder) starve(now time.Time) { l.starvingUntil.Store(now.Add(starveHold).UnixNano()) }

// backOff records a failed run and schedules the next, or gives up after too many in a row.
func (l *Ladder) backOff(code string, now time.Time) {
	l.cfg.Event(EventFailure, code)
	l.failures++
	l.healthySince = time.Time{}
	l.recovering = true
	if l.failures > maxFailures {
		l.disabled = true
		l.log.Error("the transcoder keeps failing; renditions follow the source for the rest of the stream",
			"failures", l.failures)
		return
	}
	l.nextStart = now.Add(min(maxBackoff, time.Second<<(l.failures-1)))
}

// startRun starts ffmpeg on the newest source segment that begins with a key frame and feeds
// it everything received since.
func (l *Ladder) startRun(ctx context.Context, now time.Time) {
	seg := l.replay.start
	l.runs++
	id := l.runs
	proc, err := startProcess(l.ffmpeg, ffmpegArgs(l.rungs, x264Presets[l.preset]), len(l.slots), l.h265,
		func(i int, pts int64, au [][]byte) { l.slots[i].onVideo(l.ctx, id, pts, au) })
	if err != nil {
		l.log.Error("cannot start the transcoder", "err", err)
		l.gate.fallBack(ctx)
		l.backOff(CodeExited, now)
		return
	}
	r := &run{id: id, proc: proc, seg: seg, fed: &fedIndex{}, started: now}
	var audio []frame
	for _, f := range l.replay.frames {
		if !f.video {
			audio = append(audio, f)
		}
	}
	pcfg := l.cfg.Packager
	for _, s := range l.slots {
		if err := s.begin(id, seg, r.fed, pcfg, l.src.PartTarget(), audio); err != nil {
			l.log.Error("rendition packager", "rendition", s.rung.Name, "err", err)
			l.disabled = true
			proc.stop(0)
			l.gate.fallBack(ctx)
			return
		}
	}
	l.gate.engage(seg.msn)
	l.run = r
	l.log.Info("transcoder started", "run", id, "msn", seg.msn, "preset", x264Presets[l.preset], "pid", proc.cmd.Process.Pid)
	for _, f := range l.replay.frames {
		if f.video {
			l.feed(f)
		}
	}
}

// feed gives one video frame to the current run, on a timeline that starts at its segment.
func (l *Ladder) feed(f frame) {
	r := l.run
	pts := tsOffset + ticks90(f.pts-r.seg.dts)
	dts := tsOffset + ticks90(f.dts-r.seg.dts)
	r.fed.add(pts, f.mark)
	if r.proc.enqueue(inputFrame{pts: pts, dts: dts, au: f.au}) {
		r.fedIn = max(r.fedIn, f.pts)
	}
}

// scanParams notes in-band parameter sets and tells whether au starts a GOP (an IDR, or for
// H.265 any random access point).
func (l *Ladder) scanParams(au [][]byte) bool {
	key := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if l.h265 {
			switch typ := n[0] >> 1 & 0x3f; {
			case typ >= 32 && typ <= 34:
				l.params[typ-32] = keep(l.params[typ-32], n)
			case typ >= 16 && typ <= 21:
				key = true
			}
			continue
		}
		switch n[0] & 0x1f {
		case 7:
			l.params[1] = keep(l.params[1], n)
		case 8:
			l.params[2] = keep(l.params[2], n)
		case 5:
			key = true
		}
	}
	return key
}

// annexB copies an access unit for ffmpeg: without delimiters (the MPEG-TS writer adds its
// own), and with the parameter sets in force in front of a key frame that lacks them (RTMP
// sends them once, out of band).
func (l *Ladder) annexB(au [][]byte, key bool) [][]byte {
	out := make([][]byte, 0, len(au)+3)
	hasParams := false
	for _, n := range au {
		if len(n) > 0 && isParamSet(n, l.h265) {
			hasParams = true
		}
	}
	if key && !hasParams {
		for _, p := range l.params {
			if len(p) > 0 {
				out = append(out, append([]byte(nil), p...))
			}
		}
	}
	for _, n := range au {
		if len(n) == 0 || isAUD(n, l.h265) {
			continue
		}
		out = append(out, append([]byte(nil), n...))
	}
	return out
}

// keep returns a parameter set as the new value, copied only when it changed: the caller may
// reuse the memory of what it wrote.
func keep(cur, n []byte) []byte {
	if bytes.Equal(cur, n) {
		return cur
	}
	return bytes.Clone(n)
}

func isParamSet(n []byte, h265 bool) bool {
	if h265 {
		t := n[0] >> 1 & 0x3f
		return t >= 32 && t <= 34
	}
	t := n[0] & 0x1f
	return t == 7 || t == 8
}

func isAUD(n []byte, h265 bool) bool {
	if h265 {
		return n[0]>>1&0x3f == 35
	}
	return n[0]&0x1f == 9
}
