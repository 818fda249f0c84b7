package whip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"glasscast/ingest"
)

const (
	// maxFrames bounds the access units queued between the tracks' readers and the session;
	// a publisher whose stream cannot be packaged as fast as it arrives is disconnected.
	maxFrames = 512
	// trackSettle is how long the session waits for the offer's other track once one has
	// started sending.
	trackSettle = 3 * time.Second
	// maxLatePackets is how far (in packets) the sample builder waits for a lost packet.
	maxLatePackets = 256
	// nackInterval is how often the missing packets are NACKed (pion's default is 100 ms): a
	// retransmission can then come a round trip after the hole is seen, plus at most this.
	nackInterval = 20 * time.Millisecond
	// minLossWait and maxLossWait bound lossWait.
	minLossWait = 150 * time.Millisecond
	maxLossWait = 500 * time.Millisecond
	// minKeyRequest is the least time between two key frame requests (PLIs) for losses: the
	// losses of one burst are seen within it, and one key frame answers them all.
	minKeyRequest = 500 * time.Millisecond
	// maxKeyForetell is how long a key frame request waits for the packager to have been told
	// of it (one video frame's write) before it goes out regardless; frames come every few
	// tens of milliseconds while video is passed on, and the wait is skipped when it is not.
	maxKeyForetell = time.Second
)

// frame is an access unit on its way to the session: H.264 NALUs or an AAC frame.
type frame struct {
	pts time.Duration
	au  [][]byte // video
	aac []byte   // audio
}

// publisher is one WHIP session: a peer connection feeding an ingest session.
type publisher struct {
	s    *Server
	id   string
	log  *slog.Logger
	sess Session
	pc   *webrtc.PeerConnection
	t0   time.Time // the session's zero timestamp

	ctx    context.Context
	cancel context.CancelCauseFunc

	expectVideo, expectAudio bool
	tracks                   chan bool // a track started sending (true: video)
	frames                   chan frame
	lastMedia                atomic.Int64 // unix nanoseconds of the last RTP packet
	videoTaken, audioTaken   atomic.Bool
	// keyAsked is set before a PLI for the H.264 track goes out; the pump tells the session
	// before its next video write and then signals keyTold, after which the PLI is sent.
	keyAsked atomic.Bool
	keyTold  chan struct{}
	// passing is set while readVideo passes H.264 frames on: from a key frame to a loss.
	passing atomic.Bool
	// sentVideo is the video track's codec when it is transcoded ("vp8", "vp9"); written by
	// onTrack before the track's reader starts, read by pump after that reader's first frame.
	sentVideo string
	readers   sync.WaitGroup
}

func newPublisher(s *Server, id string, log *slog.Logger) *publisher {
	p := &publisher{s: s, id: id, log: log, t0: time.Now(), tracks: make(chan bool, 4), frames: make(chan frame, maxFrames),
		keyTold: make(chan struct{}, 1)}
	p.ctx, p.cancel = context.WithCancelCause(s.ctx)
	p.lastMedia.Store(time.Now().UnixNano())
	return p
}

// end ends the session; a nil err is the publisher's DELETE.
func (p *publisher) end(err error) {
	if err == nil {
		err = ErrDeleted
	}
	p.cancel(err)
}

func (p *publisher) closePeer() {
	if p.pc != nil {
		_ = p.pc.Close()
	}
}

func (p *publisher) iceUfrag() string {
	if d := p.pc.LocalDescription(); d != nil {
		if parsed, err := d.Unmarshal(); err == nil {
			for _, m := range parsed.MediaDescriptions {
				if v, ok := m.Attribute("ice-ufrag"); ok {
					return v
				}
			}
		}
	}
	return ""
}

// negotiate answers the offer, with every ICE candidate in the answer (the ports are fixed,
// so gathering is immediate and the publisher needs no trickle).
func (p *publisher) negotiate(offer string) (string, error) {
	pc, err := p.s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("peer connection: %w", err)
	}
	p.pc = pc
	pc.OnTrack(p.onTrack)
	log := p.log // p.log gains the stream once attached; callbacks keep this one
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		log.Debug("whip connection state", "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateFailed:
			p.end(errors.New("ICE or DTLS failed (the publisher is unreachable)"))
		case webrtc.PeerConnectionStateClosed:
			p.end(errors.New("peer connection closed"))
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: preferH264(offer)}); err != nil {
		return "", fmt.Errorf("invalid offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
	}
	local := pc.LocalDescription()
	parsed, err := local.Unmarshal()
	if err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Port.Value == 0 || !receives(m) {
			continue
		}
		switch m.MediaName.Media {
		case "video":
			p.expectVideo = true
		case "audio":
			p.expectAudio = true
		}
	}
	if !p.expectVideo && !p.expectAudio {
		return "", errors.New("the offer sends neither H.264, VP8 or VP9 video nor Opus audio")
	}
	return local.SDP, nil
}

// receives reports an answered media section in which the server receives.
func receives(m *sdp.MediaDescription) bool {
	for _, a := range m.Attributes {
		switch a.Key {
		case "recvonly", "sendrecv":
			return true
		}
	}
	return false
}

func (p *publisher) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	mime := t.Codec().MimeType
	video := strings.EqualFold(mime, webrtc.MimeTypeH264) || strings.EqualFold(mime, webrtc.MimeTypeVP8) || strings.EqualFold(mime, webrtc.MimeTypeVP9)
	switch {
	case video && p.videoTaken.CompareAndSwap(false, true):
		if !strings.EqualFold(mime, webrtc.MimeTypeH264) {
			p.sentVideo = strings.ToLower(strings.TrimPrefix(mime, "video/"))
		}
		rtt := roundTrip(r)
		wait := lossWait(rtt)
		p.log.Info("whip: video track", "codec", mime, "rtt", rtt, "loss_wait", wait)
		p.readers.Add(1)
		go func() {
			defer p.readers.Done()
			defer ingest.Recovered(p.log, "a whip video track")
			if strings.EqualFold(mime, webrtc.MimeTypeH264) {
				p.readVideo(t, wait)
			} else {
				p.readVPX(t, wait)
			}
		}()
	case strings.EqualFold(mime, webrtc.MimeTypeOpus) && p.audioTaken.CompareAndSwap(false, true):
		p.readers.Add(1)
		go func() {
			defer p.readers.Done()
			defer ingest.Recovered(p.log, "a whip audio track")
			p.readAudio(t)
		}()
	default:
		// Only the first video and the first audio track are used.
		p.log.Warn("whip: ignoring a track", "codec", mime, "kind", t.Kind().String())
	}
}

// lossWait is how long (in media time) the sample builder waits for a missing packet before
// it gives the frame up, holding the frames after it meanwhile, for a publisher rtt away (0:
// not known). A frame lost for good freezes the video from it until the key frame then asked
// for, so the wait is most of that freeze; it leaves two NACK rounds, each a round trip and a
// NACK interval, after the packet that shows the hole, which can come a frame (40 ms at 25
// fps) after the lost one, and 50 ms for jitter. The builder counts it in media time from the
// incomplete frame's first packet: below about 7 fps (a frame interval past the least wait)
// the loss of a frame's last packet, seen only at the next frame, gets no NACK before the
// frame is given up (at 500 ms, below 2 fps).
func lossWait(rtt time.Duration) time.Duration {
	if rtt <= 0 {
		return maxLossWait
	}
	return min(max(2*(rtt+nackInterval)+90*time.Millisecond, minLossWait), maxLossWait)
}

// roundTrip is the round trip to the publisher on the receiver's ICE candidate pair, as its
// connectivity checks last measured it (0: not measured yet).
func roundTrip(r *webrtc.RTPReceiver) time.Duration {
	if r == nil || r.Transport() == nil || r.Transport().ICETransport() == nil {
		return 0
	}
	st, ok := r.Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok {
		return 0
	}
	return time.Duration(st.CurrentRoundTripTime * float64(time.Second))
}

// push queues an access unit for the session.
func (p *publisher) push(f frame) {
	select {
	case p.frames <- f:
	default:
		p.end(fmt.Errorf("more than %d access units wait to be packaged", maxFrames))
	}
}

// timeline maps a track's RTP timestamps to the session's: a track starts at the time its
// first packet arrived after the session's start, and then follows its own clock, so audio
// and video stay in step as they were sent (within the network's jitter at the start).
type timeline struct {
	clock   int64
	started bool
	base    time.Duration
	last    uint32
	ext     int64 // timestamp since the first, unwrapped
}

func (tl *timeline) at(ts uint32, arrival time.Duration) time.Duration {
	if !tl.started {
		tl.started, tl.base, tl.last = true, arrival, ts
	}
	tl.ext += int64(int32(ts - tl.last))
	tl.last = ts
	return tl.base + time.Duration(tl.ext*int64(time.Second)/tl.clock)
}

func (p *publisher) since() time.Duration { return time.Since(p.t0) }

// readVideo depacketizes H.264 into access units, starting at a key frame, and asks the
// publisher for a key frame every KeyFrameInterval and after a loss. The frames after a lost
// one are dropped until a key frame comes: they refer to it, and when it was a key frame with
// new parameter sets (a browser lowering its resolution under load sends one) they do not
// even decode with the ones the player has, and Amazon's IVS player stops at the first with
// ErrorInvalidData. A viewer sees a freeze of wait (lossWait) and the key frame's round trip
// instead; its part can run longer than PART-TARGET.
func (p *publisher) readVideo(t *webrtc.TrackRemote, wait time.Duration) {
	p.tracks <- true
	askKey := p.keyFrames(t, p.s.cfg.KeyFrameInterval, true)
	sb := samplebuilder.New(maxLatePackets, &codecs.H264Packet{}, 90000, samplebuilder.WithMaxTimeDelay(wait))
	tl := timeline{clock: 90000}
	meter := p.sess.Meter()
	keyed, started := false, false // passing frames on; a key frame has come
	dropped := 0
	defer func() {
		if dropped > 0 {
			p.log.Info("whip: video packets lost", "packets", dropped)
		}
	}()
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		now := p.since()
		p.lastMedia.Store(time.Now().UnixNano())
		if !tl.started {
			tl.at(pkt.Timestamp, now)
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			var au h264.AnnexB
			valid := au.Unmarshal(s.Data) == nil && len(au) > 0
			key := valid && h264.IsRandomAccess(au)
			if s.PrevDroppedPackets > 0 && started {
				dropped += int(s.PrevDroppedPackets)
			}
			if s.PrevDroppedPackets > 0 && !key {
				// A frame was lost despite NACKs: what follows refers to it, so nothing is passed
				// on until a key frame, asked for again at each loss until one comes. Before the
				// first frame passed on, the frame lost was the first key frame: it is asked for
				// again at once, not at the next periodic request.
				if started {
					p.log.Info("whip: video packets lost; dropping the frames until a key frame", "packets", s.PrevDroppedPackets, "at", tl.at(s.PacketTimestamp, now))
					keyed = false
					p.stopPassing()
				}
				askKey()
			}
			if !valid || !keyed && !key {
				continue
			}
			if !keyed {
				p.passing.Store(true)
			}
			keyed, started = true, true
			dts := tl.at(s.PacketTimestamp, now)
			meter.Video(len(s.Data), key, dts)
			p.push(frame{pts: dts, au: au})
		}
	}
}

// stopPassing notes that no video is passed on until a key frame. A key frame request waiting
// to be foretold by the next frame written (foretellKey) goes out at once, since that frame
// will be the key frame.
func (p *publisher) stopPassing() {
	p.passing.Store(false)
	if p.keyAsked.Swap(false) {
		select {
		case p.keyTold <- struct{}{}:
		default:
		}
	}
}

// keyFrames asks the publisher for a key frame (a PLI) now, every interval (0: never again)
// and whenever the returned function is called, at most every minKeyRequest, until the
// session ends. With foretell, the track is the one packaged as sent, and each request first
// waits for the packager to be told of it (foretellKey).
func (p *publisher) keyFrames(t *webrtc.TrackRemote, interval time.Duration, foretell bool) func() {
	pli := make(chan struct{}, 1)
	go func() {
		var tick <-chan time.Time
		if interval > 0 {
			tk := time.NewTicker(interval)
			defer tk.Stop()
			tick = tk.C
		}
		periodic := false // the request just sent was the interval's, not a loss's
		for {
			if foretell {
				p.foretellKey()
			}
			if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}}); err != nil {
				return
			}
			// Coalesce the requests of a burst of losses: the key frame answers them all. A
			// loss just after a periodic request goes out at once: the key frame lost may be
			// that request's answer, and waiting froze the video 480-520 ms instead of 280.
			// (Requests every 200 ms in a burst of losses made Chromium lose more.)
			var loss <-chan struct{}
			if periodic {
				loss = pli
			}
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(minKeyRequest):
			case <-loss:
				periodic = false
				continue
			}
			select {
			case <-p.ctx.Done():
				return
			case <-tick:
				periodic = true
			case <-pli:
				periodic = false
			}
		}
	}()
	return func() {
		select {
		case pli <- struct{}{}:
		default:
		}
	}
}

// foretellKey has the pump tell the session that a key frame is about to be asked for, and
// waits until it has written one more video frame after that (or maxKeyForetell), unless no
// frame is being passed on (before the first key frame, or after a loss): the answer, which
// the encoder makes of its next capture, off the cadence of its key frames, may then end a
// segment, and the packager must not have sent the part before it early. The frames already
// on their way were encoded before the request, so none of them is the answer.
func (p *publisher) foretellKey() {
	if !p.passing.Load() {
		return // the next frame passed on is a key frame, whenever it comes: nothing to foretell
	}
	select {
	case <-p.keyTold: // a signal for an earlier request that went out regardless
	default:
	}
	p.keyAsked.Store(true)
	if !p.passing.Load() && p.keyAsked.Swap(false) {
		return // a loss stopped the frames after the check above (stopPassing)
	}
	wait := time.NewTimer(maxKeyForetell)
	defer wait.Stop()
	select {
	case <-p.keyTold:
	case <-wait.C:
	case <-p.ctx.Done():
	}
}

// readVPX depacketizes VP8 or VP9 frames and hands them, from a key frame on, to the H.264
// transcoder, whose output the session packages as it would a publisher's H.264. The
// transcoder forces its own key frames, so the publisher is asked for one only when a frame
// is lost or dropped (and at the start).
func (p *publisher) readVPX(t *webrtc.TrackRemote, wait time.Duration) {
	p.tracks <- true
	mime := t.Codec().MimeType
	askKey := p.keyFrames(t, 0, false)
	enc := newH264Encoder(p.ctx, p.s.cfg, mime, p.log, askKey, func(pts time.Duration, au [][]byte) {
		p.push(frame{pts: pts, au: au})
	})
	defer enc.close()
	var depack rtp.Depacketizer = &codecs.VP8Packet{}
	if strings.EqualFold(mime, webrtc.MimeTypeVP9) {
		depack = &codecs.VP9Packet{}
	}
	sb := samplebuilder.New(maxLatePackets, depack, 90000, samplebuilder.WithMaxTimeDelay(wait))
	tl := timeline{clock: 90000}
	meter := p.sess.Meter()
	keyed := false
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		now := p.since()
		p.lastMedia.Store(time.Now().UnixNano())
		if !tl.started {
			tl.at(pkt.Timestamp, now)
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			if len(s.Data) == 0 {
				continue
			}
			key := vpxIsKey(mime, s.Data)
			if s.PrevDroppedPackets > 0 && !key {
				// What follows refers to a lost frame: wait for a key frame, and ask for one
				// (also when the first key frame was lost: only one is asked for at the start).
				keyed = false
				askKey()
			}
			if !keyed && !key {
				continue
			}
			keyed = true
			dts := tl.at(s.PacketTimestamp, now)
			meter.Video(len(s.Data), key, dts)
			enc.write(vpxFrame{data: s.Data, pts: dts, key: key})
		}
	}
}

// readAudio hands Opus packets to the AAC transcoder.
func (p *publisher) readAudio(t *webrtc.TrackRemote) {
	p.tracks <- false
	meter := p.sess.Meter()
	enc := newAACEncoder(p.ctx, p.s.cfg.FFmpeg, p.log, func(pts time.Duration, au []byte) {
		p.push(frame{pts: pts, aac: au})
	})
	defer enc.close()
	tl := timeline{clock: int64(t.Codec().ClockRate)}
	if tl.clock == 0 {
		tl.clock = 48000
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		p.lastMedia.Store(time.Now().UnixNano())
		if len(pkt.Payload) == 0 {
			continue
		}
		meter.Audio(len(pkt.Payload))
		enc.write(pkt, tl.at(pkt.Timestamp, p.since()))
	}
}

// aacConfig is what the transcoder outputs: AAC-LC, 48 kHz, stereo.
var aacConfig = mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2, ChannelCount: 2}

// run feeds the session until the publisher ends, then detaches it.
func (p *publisher) run() error {
	err := p.pump()
	p.cancel(err)
	p.closePeer()
	p.readers.Wait()
	cause := context.Cause(p.ctx)
	p.sess.Detach(p.ctx, cause)
	return cause
}

func (p *publisher) pump() error {
	ctx := p.ctx
	var video, audio bool
	deadline := time.NewTimer(p.s.cfg.Timeout)
	defer deadline.Stop()
	var settle <-chan time.Time
wait:
	for video != p.expectVideo || audio != p.expectAudio {
		select {
		case v := <-p.tracks:
			if v {
				video = true
			} else {
				audio = true
			}
			if settle == nil {
				settle = time.After(trackSettle)
			}
		case <-settle:
			break wait
		case <-deadline.C:
			return fmt.Errorf("no media within %v of the answer", p.s.cfg.Timeout)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	var v, a mp4codecs.Codec
	var sentVideo, sentAudio string
	if video {
		v, sentVideo = &mp4codecs.H264{}, p.sentVideo
	}
	if audio {
		a, sentAudio = &mp4codecs.MPEG4Audio{Config: aacConfig}, "opus" // WHIP audio is Opus
	}
	// The pipeline (a transcoder for ladders) lives on the server's context, as RTMP's and SRT's
	// do, not the publisher's: that one is cancelled before Detach, which still has a last part
	// to flush through it.
	if err := p.sess.Start(p.s.ctx, v, a, sentVideo, sentAudio); err != nil {
		return err
	}
	p.log.Info("whip tracks started", "video", video, "audio", audio)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case f := <-p.frames:
			var err error
			if f.aac != nil {
				if audio {
					err = p.sess.WriteMPEG4Audio(ctx, f.pts, f.aac)
				}
			} else if video {
				told := p.keyAsked.Swap(false)
				if told {
					p.sess.ExpectKeyFrame()
				}
				err = p.sess.WriteH264(ctx, f.pts, f.pts, f.au)
				if told {
					select {
					case p.keyTold <- struct{}{}:
					default:
					}
				}
			}
			if err != nil {
				return err
			}
		case <-tick.C:
			if idle := time.Since(time.Unix(0, p.lastMedia.Load())); idle > p.s.cfg.Timeout {
				return fmt.Errorf("publisher timeout: no media for %v", idle.Round(time.Second))
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
