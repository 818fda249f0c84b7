package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"golang.org/x/time/rate"

	"glasscast/auth"
	"glasscast/events"
	"glasscast/ingest/packager"
	"glasscast/ingest/transcode"
	"glasscast/ingestctl"
	"glasscast/media"
	"glasscast/metrics"
	"glasscast/store"
)

// Session event names and types, as IVS reports them in truncatedEvents and EventBridge.
const (
	typeState  = "IVS Stream State Change"
	typeHealth = "IVS Stream Health Change"
)

// broadcast is one stream session on a channel this ingest owns. It outlives a publisher that
// disconnects for up to the reconnect grace, so a quick reconnect continues the session.
type broadcast struct {
	s        *Server
	channel  store.Channel
	streamID string
	started  time.Time
	log      *slog.Logger
	health   healthTracker
	limiter  *rate.Limiter
	done     chan struct{} // closed once the broadcast has ended and cleaned up

	mu        sync.Mutex
	pub       *Session
	grace     *time.Timer
	ended     bool
	endReason string
	state     packager.Start            // timeline to continue after a reconnect
	ladder    map[string]packager.Start // and the transcoded renditions'
	out       media.Broadcast
	health0   string
	sub       *ingestctl.Subscription
	stopBeat  chan struct{}
	meter     metrics.IngestMeter // set by claim, before any publisher runs
	adUntil   time.Time           // when the last ad break accepted ends, at the latest
	// unplayed holds the renditions initialised but still without a complete segment at the
	// origin; the broadcast becomes playable (LIVE, Stream Start) when it empties.
	unplayed map[string]bool
	playable bool
}

// attach gives a publisher its channel's broadcast: the one waiting in its reconnect grace,
// or a new one once the channel is claimed cluster-wide. A channel that already has a
// publisher, here or on another ingest, is refused.
func (s *Server) attach(ctx context.Context, ch store.Channel, pub *Session) (*broadcast, error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, errRefused{"the ingest is shutting down"}
	}
	if b := s.broadcasts[ch.ID]; b != nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		defer s.mu.Unlock()
		if b.ended {
			return nil, errRefused{"the channel's previous broadcast is still ending; retry"}
		}
		if b.pub != nil {
			return nil, errRefused{"the channel already has a publisher"}
		}
		b.grace.Stop()
		b.pub = pub
		b.health.reset()
		b.log.Info("publisher reconnected within grace; continuing the stream session")
		return b, nil
	}
	now := time.Now().UTC()
	b := &broadcast{s: s, channel: ch, streamID: auth.NewStreamID(), started: now, done: make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.cfg.MetadataRate), s.cfg.MetadataRate), health0: healthHealthy,
		stopBeat: make(chan struct{}), pub: pub}
	// Object names (seg<msn>, init<generation>) are cached as immutable, so a new broadcast must
	// never reuse its channel's old names: both start from the clock, which advances faster
	// than a stream can use them.
	base := namingBase(now)
	b.state = packager.Start{MSN: base, Generation: int(base)}
	b.log = s.log.With("channel", ch.ID, "stream", b.streamID)
	s.broadcasts[ch.ID] = b
	s.mu.Unlock()

	if err := b.claim(ctx); err != nil {
		s.mu.Lock()
		delete(s.broadcasts, ch.ID)
		s.mu.Unlock()
		close(b.done)
		return nil, err
	}
	return b, nil
}

// namingEpoch starts the clock that numbers a new broadcast's segments.
var namingEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// namingBase is the first media sequence number of a broadcast starting at t: half-seconds
// since namingEpoch. Segments last at least half the segment target (1 s by default), so a
// broadcast never reaches the next one's base; the count fits 31 bits for 34 years, the most
// some players parse.
func namingBase(t time.Time) uint64 { return uint64(t.Sub(namingEpoch) / (500 * time.Millisecond)) }

// claim registers the channel as live with this ingest, starts the session and answers the
// control API's requests for it.
func (b *broadcast) claim(ctx context.Context) error {
	s := b.s
	live := b.liveRecord()
	err := s.store.Live.Create(ctx, b.channel.ID, live)
	if errors.Is(err, store.ErrExists) {
		if cur, ok := s.store.Live.Get(b.channel.ID); ok && time.Since(cur.UpdatedAt) < store.LiveTTL {
			return errRefused{"the channel is live on ingest " + cur.Ingest}
		}
		// A registration whose heartbeat stopped (a crashed ingest) is taken over.
		err = s.store.Live.Put(ctx, b.channel.ID, live)
	}
	if err != nil {
		return fmt.Errorf("register live stream: %w", err)
	}
	sub, err := ingestctl.Serve(s.nc, b.channel.ID, b)
	if err != nil {
		_ = s.store.Live.Delete(context.WithoutCancel(ctx), b.channel.ID)
		return err
	}
	b.sub = sub
	sess := store.Session{ChannelID: b.channel.ID, StreamID: b.streamID, StartTime: b.started, Channel: b.channel,
		Events: []store.SessionEvent{{Name: "Session Created", Type: typeState, Time: b.started}}}
	if rcArn := b.channel.RecordingConfigurationArn; rcArn != "" {
		if rc, ok := s.store.RecordingConfigs.Get(rcArn[len(rcArn)-12:]); ok {
			sess.Recording = &rc
		}
	}
	if err := s.store.Sessions.Put(ctx, store.SessionKey(b.channel.ID, b.streamID), sess); err != nil {
		b.log.Warn("record stream session", "err", err)
	}
	b.meter = s.cfg.Meters.Open(b.channel.ID, b.channel.Name, b.streamID)
	for _, e := range sess.Events {
		b.emit(e)
	}
	s.wg.Add(1)
	go b.heartbeat()
	b.log.Info("broadcast started")
	return nil
}

func (b *broadcast) liveRecord() store.Live {
	b.mu.Lock()
	health := b.health0
	out := b.out
	playable := b.playable
	b.mu.Unlock()
	live := store.Live{ChannelID: b.channel.ID, StreamID: b.streamID, StartTime: b.started, Health: health,
		Ingest: b.s.cfg.Node, Origins: b.s.cfg.Origins, Playable: playable, UpdatedAt: time.Now().UTC()}
	if r, ok := out.(media.SinkReporter); ok {
		for _, st := range r.SinkStatus() {
			live.OriginStates = append(live.OriginStates, store.OriginState{URL: st.Name, State: string(st.State), Since: st.Since})
		}
	}
	return live
}

// originsChanged returns a channel closed when an origin's delivery state changes, or nil
// while the output does not report them.
func (b *broadcast) originsChanged() <-chan struct{} {
	b.mu.Lock()
	out := b.out
	b.mu.Unlock()
	if r, ok := out.(media.SinkReporter); ok {
		return r.SinkChanged()
	}
	return nil
}

// heartbeat refreshes the live registration and re-evaluates health until the broadcast ends.
// A change of an origin's delivery state is recorded at once.
func (b *broadcast) heartbeat() {
	defer b.s.wg.Done()
	t := time.NewTicker(b.s.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-b.stopBeat:
			return
		case <-b.originsChanged():
			select {
			case <-b.stopBeat: // ending: the registration is about to go
				return
			default:
			}
			b.putLive()
			continue
		case <-t.C:
		}
		b.mu.Lock()
		h := healthStarving // no publisher (reconnect grace) means no input
		if b.pub != nil {
			h = b.health.evaluate(time.Now())
			if b.pub.starving() {
				h = healthStarving // the transcoder falls behind real time
			}
		}
		changed := h != b.health0
		b.health0 = h
		b.mu.Unlock()
		b.meter.Health(h)
		if changed {
			name := "Starvation Start"
			if h == healthHealthy {
				name = "Starvation End"
			}
			b.log.Info("stream health changed", "health", h)
			b.addEvent(store.SessionEvent{Name: name, Type: typeHealth, Time: time.Now().UTC()})
		}
		b.putLive()
	}
}

func (b *broadcast) putLive() {
	ctx, cancel := context.WithTimeout(context.Background(), b.s.cfg.Heartbeat)
	defer cancel()
	if err := b.s.store.Live.Put(ctx, b.channel.ID, b.liveRecord()); err != nil {
		b.log.Warn("refresh live registration", "err", err)
	}
}

// addEvent appends to the session's history, keeping at most store.MaxSessionEvents.
func (b *broadcast) addEvent(e store.SessionEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.s.store.Sessions.Update(ctx, store.SessionKey(b.channel.ID, b.streamID), func(s *store.Session) error {
		s.Events = append(s.Events, e)
		if n := len(s.Events); n > store.MaxSessionEvents {
			s.Events = slices.Delete(s.Events, 0, n-store.MaxSessionEvents)
		}
		if e.Name == "Session Ended" {
			t := e.Time
			s.EndTime = &t
		}
		return nil
	})
	if err != nil {
		b.log.Warn("record session event", "event", e.Name, "err", err)
	}
	b.emit(e)
}

// emit publishes a session event as an EventBridge event, once: at the point where it enters
// the session's history.
func (b *broadcast) emit(e store.SessionEvent) {
	if b.s.cfg.Events == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.s.cfg.Events.StreamEvent(ctx, events.StreamChange{DetailType: e.Type, Name: e.Name, ChannelID: b.channel.ID,
		ChannelName: b.channel.Name, StreamID: b.streamID, Code: e.Code, Time: e.Time})
}

// describeIngest records what the publisher sends.
func (b *broadcast) describeIngest(ic *store.IngestConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.s.store.Sessions.Update(ctx, store.SessionKey(b.channel.ID, b.streamID), func(s *store.Session) error {
		s.Ingest = ic
		return nil
	})
	if err != nil {
		b.log.Warn("record ingest configuration", "err", err)
	}
}

// newPipeline returns what packages a (re)connected publisher's stream, continuing the
// timeline: one packager for BASIC channels (and audio-only streams), a transcoding ladder for
// the others. clock stamps the first frame's program-date-time.
func (b *broadcast) newPipeline(ctx context.Context, video, audio mp4codecs.Codec, clock func() time.Time) (pipeline, error) {
	b.mu.Lock()
	start, prev := b.state, b.ladder
	b.mu.Unlock()
	cfg := packager.Config{Rendition: transcode.SourceName, PartTarget: b.s.cfg.PartTarget, SegmentTarget: b.s.cfg.SegmentTarget,
		Start: start, Logger: b.log, Now: clock}
	if b.channel.LatencyMode == "NORMAL" {
		cfg.SegmentTarget = b.s.cfg.NormalSegmentTarget
	}
	o := &output{b: b}
	tc := b.s.cfg.Transcode
	if video != nil && !tc.Disabled && transcode.IsTranscoded(b.channel.Type) {
		l, err := transcode.New(ctx, transcode.Config{ChannelType: b.channel.Type, Preset: b.channel.Preset,
			FFmpeg: tc.FFmpeg, X264Preset: tc.X264Preset, Packager: cfg, Renditions: prev,
			Event: b.transcodeEvent, Logger: b.log}, video, audio, o)
		if err != nil {
			return nil, fmt.Errorf("ladder: %w", err)
		}
		o.partTarget = l.PartTarget
		return l, nil
	}
	// A ladder anchors every rendition's timeline on the source's first key frame, so only a
	// lone packager may move its anchor to an earlier arrival. Its parts go to the origin, which
	// takes a repeat of its newest part marked Last as its segment's end, so it may also send
	// parts early (a ladder's gate follows segments by parts marked Last when they first come).
	cfg.ArrivalClock, cfg.EarlyParts = true, true
	p, err := packager.New(cfg, video, audio, o)
	if err != nil {
		return nil, fmt.Errorf("packager: %w", err)
	}
	o.partTarget = p.PartTarget
	return p, nil
}

// transcodeEvent records a transcoder failure or recovery in the session's history.
func (b *broadcast) transcodeEvent(name, code string) {
	b.addEvent(store.SessionEvent{Name: name, Type: typeHealth, Time: time.Now().UTC(), Code: code})
}

// keepState remembers where the last pipeline stopped, for the next publisher to continue.
func (b *broadcast) keepState(p pipeline) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch p := p.(type) {
	case *packager.Packager:
		b.state = p.State()
	case *transcode.Ladder:
		b.state, b.ladder = p.State()
	}
}

// output is the media.Output of a broadcast's pipeline: it hands the renditions to the
// origin under the caller's context, opening the origin broadcast on the first init, once
// PART-TARGET is known.
type output struct {
	b          *broadcast
	partTarget func() time.Duration
	newest     map[string]partID // per rendition, the newest part sent; under b.mu
}

// partID names a part sent, to tell a repeat from a new part.
type partID struct {
	msn   uint64
	index int
}

func (o *output) Init(ctx context.Context, r media.Rendition, init []byte) error {
	b := o.b
	b.mu.Lock()
	out := b.out
	b.mu.Unlock()
	if out == nil {
		cfgTarget := b.s.cfg.SegmentTarget
		if b.channel.LatencyMode == "NORMAL" {
			cfgTarget = b.s.cfg.NormalSegmentTarget
		}
		var err error
		out, err = b.s.sink.Open(ctx, media.Stream{ChannelID: b.channel.ID, StreamID: b.streamID,
			LowLatency: b.channel.LatencyMode != "NORMAL", TargetDuration: cfgTarget, PartTarget: o.partTarget()})
		if err != nil {
			return fmt.Errorf("open origin broadcast: %w", err)
		}
		b.mu.Lock()
		b.out = out
		b.mu.Unlock()
	}
	if err := out.Init(ctx, r, init); err != nil {
		return err
	}
	b.mu.Lock()
	if !b.playable {
		if b.unplayed == nil {
			b.unplayed = map[string]bool{}
		}
		b.unplayed[r.Name] = true
	}
	b.mu.Unlock()
	return nil
}

func (o *output) Part(ctx context.Context, rendition string, p media.Part) error {
	id := partID{p.MSN, p.Index}
	o.b.mu.Lock()
	out := o.b.out
	prev, sent := o.newest[rendition]
	if o.newest == nil {
		o.newest = map[string]partID{}
	}
	o.newest[rendition] = id
	o.b.mu.Unlock()
	if out == nil {
		return errors.New("part before init")
	}
	err := out.Part(ctx, rendition, p)
	if err == nil {
		if !sent || prev != id { // a part sent again, marked Last, was metered the first time
			o.b.meter.Part(time.Since(p.ProgramDateTime.Add(p.Duration)))
		}
		if p.Last {
			o.b.played(rendition)
		}
	}
	return err
}

// played notes that a rendition's first segment is complete at the origin. Once every
// rendition has one, the playback URL plays: the channel turns LIVE and Stream Start is sent,
// and not before, so a page that loads its player on that news never meets an error. (The
// origin lists parts from the first one, but hls.js, gohlslib and the IVS player all refuse a
// media playlist without a complete segment.)
func (b *broadcast) played(rendition string) {
	b.mu.Lock()
	if b.playable || !b.unplayed[rendition] {
		b.mu.Unlock()
		return
	}
	delete(b.unplayed, rendition)
	if len(b.unplayed) > 0 {
		b.mu.Unlock()
		return
	}
	b.playable = true
	b.mu.Unlock()
	b.putLive()
	b.log.Info("broadcast playable", "after", time.Since(b.started))
	// Outside the packager's goroutine: the session update and the event must not delay parts.
	go b.addEvent(store.SessionEvent{Name: "Stream Start", Type: typeState, Time: time.Now().UTC()})
}

// newCue stamps timed metadata with the instant it was accepted.
func (b *broadcast) newCue(text string) media.Cue {
	return media.Cue{ID: auth.RandomString(12, "abcdefghijklmnopqrstuvwxyz0123456789"), Time: time.Now().UTC(), Text: text}
}

// PutMetadata implements ingestctl.Handler: the cue goes into the next part of every rendition.
func (b *broadcast) PutMetadata(ctx context.Context, text string) error {
	if !b.limiter.Allow() {
		return ingestctl.ErrThrottled
	}
	b.mu.Lock()
	pub := b.pub
	ended := b.ended
	b.mu.Unlock()
	if ended {
		return ingestctl.ErrNotBroadcasting
	}
	if pub != nil {
		pub.addCue(text)
		return nil
	}
	// Between a disconnect and a reconnect there is no packager: the cue waits for the next one.
	b.log.Info("timed metadata arrived while the publisher is reconnecting; it is dropped")
	return ingestctl.ErrNotBroadcasting
}

// InsertAdBreak implements ingestctl.Handler: the break starts at the next segment boundary of
// every rendition (packager/adbreak.go says why there). One break runs at a time.
func (b *broadcast) InsertAdBreak(ctx context.Context, ab ingestctl.AdBreak) error {
	now := time.Now()
	b.mu.Lock()
	pub, ended := b.pub, b.ended
	switch {
	case ended || pub == nil || pub.b == nil:
		b.mu.Unlock()
		return ingestctl.ErrNotBroadcasting
	case now.Before(b.adUntil):
		b.mu.Unlock()
		return ingestctl.ErrAdBreakRunning
	}
	// The break may start up to a segment later and end up to a segment after its duration.
	b.adUntil = now.Add(ab.Duration + 2*max(b.s.cfg.SegmentTarget, b.s.cfg.NormalSegmentTarget))
	b.mu.Unlock()
	pub.queueCue(media.Cue{ID: ab.ID, Time: now.UTC(), AdBreak: &media.AdBreak{Planned: ab.Duration}})
	if e := b.s.cfg.Events; e != nil {
		e.StreamEvent(ctx, events.StreamChange{DetailType: events.StreamStateChange, Name: "Ad Break Start", ChannelID: b.channel.ID,
			ChannelName: b.channel.Name, StreamID: b.streamID, AdBreakID: ab.ID, Time: now})
	}
	return nil
}

// Stop implements ingestctl.Handler: StopStream disconnects the publisher and ends the stream
// at once, without waiting for a reconnect.
func (b *broadcast) Stop(ctx context.Context) error {
	b.stop("stopped through the API")
	return nil
}

// stop ends the broadcast now, disconnecting its publisher if it has one.
func (b *broadcast) stop(reason string) {
	b.mu.Lock()
	if b.ended {
		b.mu.Unlock()
		return
	}
	b.endReason = reason
	pub := b.pub
	if pub == nil {
		b.grace.Stop()
		b.mu.Unlock()
		b.end()
		return
	}
	b.mu.Unlock()
	// The publisher's detach ends the broadcast once its last part is flushed.
	pub.close()
}

// detach is called when a publisher's connection ends. Unless the broadcast is stopping or the
// publisher ended it, it waits ReconnectGrace for the publisher to come back before ending.
func (b *broadcast) detach(p *Session, err error) {
	b.mu.Lock()
	b.pub = nil
	if errors.Is(err, ErrPublisherEnded) && b.endReason == "" {
		b.endReason = "ended by the publisher"
	}
	if b.endReason != "" || b.ended {
		b.mu.Unlock()
		b.end()
		return
	}
	b.grace = time.AfterFunc(b.s.cfg.ReconnectGrace, func() {
		b.mu.Lock()
		if b.pub != nil || b.ended {
			b.mu.Unlock()
			return
		}
		b.endReason = "publisher did not reconnect"
		b.mu.Unlock()
		b.end()
	})
	b.mu.Unlock()
}

// end closes the broadcast everywhere: origin (ENDLIST), live registration, session history.
func (b *broadcast) end() {
	b.mu.Lock()
	if b.ended {
		b.mu.Unlock()
		return
	}
	b.ended = true
	out, sub, reason := b.out, b.sub, b.endReason
	b.mu.Unlock()

	close(b.stopBeat)
	if sub != nil {
		sub.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out != nil {
		if err := out.Close(ctx); err != nil {
			b.log.Warn("close origin broadcast", "err", err)
		}
	}
	// The session ends before its registration goes: a session with no end time and no
	// registration is one whose ingest died, and control's reaper ends it as failed.
	now := time.Now().UTC()
	b.addEvent(store.SessionEvent{Name: "Stream End", Type: typeState, Time: now})
	b.addEvent(store.SessionEvent{Name: "Session Ended", Type: typeState, Time: now})
	if err := b.s.store.Live.Delete(ctx, b.channel.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		b.log.Warn("remove live registration", "err", err)
	}
	b.meter.Close()
	b.s.mu.Lock()
	if b.s.broadcasts[b.channel.ID] == b {
		delete(b.s.broadcasts, b.channel.ID)
	}
	b.s.mu.Unlock()
	b.log.Info("broadcast ended", "reason", reason)
	close(b.done)
}
