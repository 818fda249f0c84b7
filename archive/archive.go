// Package archive records every live channel that has a recording configuration to S3 in IVS's
// layout, reading the same segments the origin serves and remuxing them to MPEG-TS without
// re-encoding; objects pass through a bounded spool so that nothing is lost while S3 is down.
package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/archive/bucket"
	"glasscast/archive/layout"
	"glasscast/archive/source"
	"glasscast/archive/spool"
	"glasscast/archive/thumbnail"
	"glasscast/auth"
	"glasscast/store"
)

// Config configures the archive role.
type Config struct {
	Region, Account string
	// Node names this process; a live stream registered by this node before the process
	// started is known to be dead.
	Node string
	// Buckets opens recording destinations.
	Buckets *bucket.Stores
	// Spool bounds the local spool; its Dir is required.
	Spool spool.Config
	// LocalOrigin, when set, is an origin in this process (reached through a loopback
	// transport); it holds every stream of an ingest in the same process.
	LocalOrigin http.RoundTripper
	// OriginURL is the origin (or edge) to read from when a live stream names no origin.
	OriginURL string
	// SegmentTarget is the length of recorded TS files; IVS writes about 10 s.
	SegmentTarget time.Duration
	// Thumbnails makes thumbnails; nil or without ffmpeg records none.
	Thumbnails *thumbnail.Maker
	// Events hears recording state changes; nil records them in stream sessions only.
	Events Events
	// Recorded hears the media time of each segment recorded, once per channel whatever the
	// renditions (CloudWatch's RecordedTime); nil: nobody. It must not block.
	Recorded func(channelID string, d time.Duration)
	// JS, when set, coordinates several archive processes with claims per channel.
	JS     jetstream.JetStream
	Logger *slog.Logger
}

// Archive is the recording role.
type Archive struct {
	cfg     Config
	st      *store.Store
	sp      *spool.Spool
	log     *slog.Logger
	events  Events
	claims  *claims
	started time.Time

	mu        sync.Mutex
	recs      map[string]*recording // by recording ID
	byChannel map[string]*recording // the recording a channel's next stream may continue
	starting  map[string]bool       // channels whose recording is being started
	skipped   map[string]string     // channel -> stream not recorded here (failed, or claimed elsewhere)
	wg        sync.WaitGroup
}

// New prepares the archive. Run starts it.
func New(cfg Config, st *store.Store) (*Archive, error) {
	if cfg.Buckets == nil {
		return nil, errors.New("archive: no bucket configuration")
	}
	if cfg.SegmentTarget <= 0 {
		cfg.SegmentTarget = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Spool.Logger = cfg.Logger
	sp, err := spool.New(cfg.Spool)
	if err != nil {
		return nil, err
	}
	a := &Archive{cfg: cfg, st: st, sp: sp, log: cfg.Logger, started: time.Now(),
		recs: map[string]*recording{}, byChannel: map[string]*recording{}, starting: map[string]bool{}, skipped: map[string]string{}}
	a.events = SessionEvents{Store: st, Log: cfg.Logger}
	if cfg.Events != nil {
		a.events = MultiEvents{a.events, cfg.Events}
	}
	return a, nil
}

// SpoolUsed is the number of bytes waiting in the spool.
func (a *Archive) SpoolUsed() int64 { return a.sp.Used() }

// Run records until ctx ends. It first resumes the recordings a previous run left in the
// spool. When ctx ends, streams being recorded get a few seconds to deliver their last
// segments; what is not uploaded stays in the spool for the next run.
func (a *Archive) Run(ctx context.Context) error {
	if a.cfg.JS != nil {
		c, err := openClaims(ctx, a.cfg.JS, a.st.Replication, a.cfg.Node)
		if err != nil {
			return err
		}
		a.claims = c
	}
	// Recordings follow streams a little past ctx: the ingest ends its broadcasts on the same
	// signal, and their last segments are worth reading.
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		<-ctx.Done()
		time.Sleep(5 * time.Second)
		stop()
	}()

	a.resume(work)
	go a.watchConfigs(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		a.reconcile(work)
		select {
		case <-ctx.Done():
			a.mu.Lock()
			recs := len(a.recs)
			a.mu.Unlock()
			if recs > 0 {
				a.log.Info("archive stopping; unfinished recordings stay in the spool", "recordings", recs)
			}
			a.waitStreams(5 * time.Second)
			stop()
			a.wg.Wait()
			return nil
		case <-a.st.Live.Changed():
		case <-a.st.Channels.Changed():
		case <-tick.C:
		}
	}
}

// waitStreams waits up to d for recordings that are following a live stream to see it end.
func (a *Archive) waitStreams(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		busy := false
		for _, r := range a.recs {
			busy = busy || r.following()
		}
		a.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fresh reports whether a live registration belongs to a running stream.
func (a *Archive) fresh(l store.Live) bool {
	if time.Since(l.UpdatedAt) > store.LiveTTL {
		return false
	}
	// A stream this node registered before this process started died with the old process.
	return !(l.Ingest == a.cfg.Node && l.UpdatedAt.Before(a.started))
}

// alive reports whether stream streamID is still live on its channel.
func (a *Archive) alive(channelID, streamID string) bool {
	l, ok := a.st.Live.Get(channelID)
	return ok && l.StreamID == streamID && a.fresh(l)
}

// originFor returns where to read a live stream from.
func (a *Archive) originFor(l store.Live) *source.Origin {
	o := &source.Origin{Region: a.cfg.Region, Account: a.cfg.Account}
	switch {
	case a.cfg.LocalOrigin != nil && l.Ingest == a.cfg.Node:
		o.Client, o.BaseURL = &http.Client{Transport: a.cfg.LocalOrigin}, "http://origin.local"
	case len(l.Origins) > 0:
		o.Client, o.BaseURL = http.DefaultClient, l.Origins[0]
	case a.cfg.OriginURL != "":
		o.Client, o.BaseURL = http.DefaultClient, a.cfg.OriginURL
	case a.cfg.LocalOrigin != nil:
		o.Client, o.BaseURL = &http.Client{Transport: a.cfg.LocalOrigin}, "http://origin.local"
	default:
		return nil
	}
	return o
}

// configID is the recording configuration id an ARN names, or "".
func configID(arn string) string {
	i := strings.LastIndexByte(arn, '/')
	if i < 0 || !strings.Contains(arn[:i], ":recording-configuration") {
		return ""
	}
	return arn[i+1:]
}

// channelARN is a channel's ARN as the control API spells it.
func (a *Archive) channelARN(id string) string {
	return fmt.Sprintf("arn:aws:ivs:%s:%s:channel/%s", a.cfg.Region, a.cfg.Account, id)
}

// reconcile starts, continues or skips a recording for every live stream.
func (a *Archive) reconcile(ctx context.Context) {
	for _, it := range a.st.Live.List() {
		l := it.Value
		if !a.fresh(l) {
			continue
		}
		ch, ok := a.st.Channels.Get(l.ChannelID)
		if !ok || ch.RecordingConfigurationArn == "" {
			continue
		}
		a.mu.Lock()
		if a.starting[ch.ID] || a.skipped[ch.ID] == l.StreamID {
			a.mu.Unlock()
			continue
		}
		rec := a.byChannel[ch.ID]
		if rec != nil {
			switch rec.offer(l, configID(ch.RecordingConfigurationArn), a.st) {
			case offerTaken, offerWait:
				a.mu.Unlock()
				continue
			case offerRefused:
				delete(a.byChannel, ch.ID)
			}
		}
		a.starting[ch.ID] = true
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.start(ctx, ch, l)
			a.mu.Lock()
			delete(a.starting, ch.ID)
			a.mu.Unlock()
		}()
	}
}

// start begins a recording of live stream l, or reports why it cannot.
func (a *Archive) start(ctx context.Context, ch store.Channel, l store.Live) {
	id := configID(ch.RecordingConfigurationArn)
	rc, ok := a.st.RecordingConfigs.Get(id)
	fail := func(reason, msg string) {
		a.log.Warn("recording not started", "channel", ch.ID, "stream", l.StreamID, "reason", reason, "detail", msg)
		a.mu.Lock()
		a.skipped[ch.ID] = l.StreamID
		a.mu.Unlock()
		a.events.RecordingEvent(ctx, Event{Time: time.Now().UTC(), Status: RecordingStartFailure, ChannelID: ch.ID,
			ChannelARN: a.channelARN(ch.ID), ChannelName: ch.Name, StreamID: l.StreamID, Reason: reason, Bucket: rc.BucketName})
	}
	switch {
	case !ok:
		fail("ResourceNotFoundException", "the channel's recording configuration does not exist")
		return
	case rc.State == stateCreating:
		return // decided once the configuration is ACTIVE or failed; the next pass retries
	case rc.State != stateActive:
		fail("ValidationException", "recording configuration is "+rc.State+": "+rc.StateReason)
		return
	}
	mine, err := a.claims.take(ctx, ch.ID)
	if err != nil || !mine {
		if err != nil {
			a.log.Warn("claim channel for recording", "channel", ch.ID, "err", err)
			return // NATS trouble: try again on the next pass
		}
		a.mu.Lock()
		a.skipped[ch.ID] = l.StreamID // another archive records it
		a.mu.Unlock()
		return
	}
	bkt, err := a.cfg.Buckets.Open(rc.BucketName)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = bkt.Check(cctx)
		cancel()
		if err != nil && !bucket.IsPermanent(err) {
			// Down for now: the spool keeps the recording until the bucket answers.
			a.log.Warn("bucket not reachable at recording start; spooling", "bucket", rc.BucketName, "err", err)
			err = nil
		}
	}
	if err != nil {
		a.claims.release(context.WithoutCancel(ctx), ch.ID)
		fail("ValidationException", err.Error())
		return
	}
	now := time.Now().UTC()
	recID := auth.NewID()
	m := meta{ID: recID, ChannelID: ch.ID, ChannelARN: a.channelARN(ch.ID), ChannelName: ch.Name, Bucket: rc.BucketName,
		Prefix: layout.Prefix(a.cfg.Account, ch.ID, now, recID), StartedAt: now, Config: rc}
	r, err := a.newRecording(m, bkt, nil)
	if err != nil {
		a.claims.release(context.WithoutCancel(ctx), ch.ID)
		fail("InternalServerException", err.Error())
		return
	}
	a.mu.Lock()
	a.recs[recID] = r
	a.byChannel[ch.ID] = r
	a.mu.Unlock()
	r.log.Info("recording started", "bucket", bkt.Location(), "prefix", m.Prefix)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		r.run(ctx, &l)
	}()
}

// resume takes over the recordings a previous run left in the spool.
func (a *Archive) resume(ctx context.Context) {
	ids, err := a.sp.Recordings()
	if err != nil {
		a.log.Error("read spool", "err", err)
		return
	}
	for _, id := range ids {
		q, err := a.sp.Open(id)
		if err != nil {
			a.log.Error("open spooled recording", "recording", id, "err", err)
			continue
		}
		st, err := readJournal(q.Dir())
		if err != nil {
			a.log.Error("spooled recording cannot be resumed; left in place", "recording", id, "dir", q.Dir(), "err", err)
			continue
		}
		bkt, err := a.cfg.Buckets.Open(st.meta.Bucket)
		if err != nil {
			a.log.Error("spooled recording's bucket cannot be opened; left in place", "recording", id, "err", err)
			continue
		}
		r, err := a.newRecording(*st.meta, bkt, st)
		if err != nil {
			a.log.Error("resume recording", "recording", id, "err", err)
			continue
		}
		r.log.Info("resuming a recording from the spool", "pending", q.Pending(), "final", st.final)
		a.mu.Lock()
		a.recs[id] = r
		if !st.final {
			if cur := a.byChannel[st.meta.ChannelID]; cur == nil || cur.meta.StartedAt.Before(st.meta.StartedAt) {
				a.byChannel[st.meta.ChannelID] = r
			}
		}
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			r.run(ctx, nil)
		}()
	}
}

// forget drops a finished recording.
func (a *Archive) forget(r *recording) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.recs, r.meta.ID)
	if a.byChannel[r.meta.ChannelID] == r {
		delete(a.byChannel, r.meta.ChannelID)
	}
}
