package archive

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"glasscast/archive/bucket"
	"glasscast/archive/layout"
	"glasscast/archive/remux"
	"glasscast/archive/spool"
	"glasscast/store"
)

// IVS's limits on merging streams into one recording (reference §4).
const (
	maxMergedStreams = 20
	maxMergedAge     = 48 * time.Hour
)

// streamRef is a stream of a recording with what it was published with.
type streamRef struct {
	ID     string              `json:"id"`
	Ingest *store.IngestConfig `json:"ingest,omitempty"`
}

// renditionState is one recorded rendition: what the playlists list, and the TS file being
// written.
type renditionState struct {
	lr        *layout.Rendition
	audioOnly bool
	source    string // the origin's name for it in the current stream
	tl        *remux.Timeline
	ts        *remux.File
	fh        *os.File
	open      bool  // the last file of lr.Files is being written
	size      int64 // bytes of the open file
	nextMSN   uint64
	disc      bool // the next file follows a discontinuity
	newStream bool // the next segment is the first of a new stream
	initURI   string
}

// fileN returns TS file n, or nil.
func (rs *renditionState) fileN(n int) *layout.File {
	for i := range rs.lr.Files {
		if rs.lr.Files[i].N == n {
			return &rs.lr.Files[i]
		}
	}
	return nil
}

func (rs *renditionState) lastN() int {
	if len(rs.lr.Files) == 0 {
		return -1
	}
	return rs.lr.Files[len(rs.lr.Files)-1].N
}

// elapsed is the media the rendition holds.
func (rs *renditionState) elapsed() time.Duration {
	var d time.Duration
	for i := range rs.lr.Files {
		d += rs.lr.Files[i].Duration()
	}
	return d
}

// phase is where a recording is in its life.
type phase int

const (
	phaseLive       phase = iota // following a stream
	phaseWaiting                 // the stream ended; a reconnect may continue the recording
	phaseFinalizing              // closed to new streams; finishing its files
)

// recording is one recording prefix: one or more merged streams.
type recording struct {
	a    *Archive
	meta meta
	log  *slog.Logger
	q    *spool.Queue
	bkt  bucket.Store
	j    *journal
	tm   thumbnailer

	attach chan store.Live

	mu         sync.Mutex
	phase      phase
	streams    []streamRef
	renditions []*renditionState
	thumbs     *layout.Thumbnails
	thumbN     int
	lost       string
	endedAt    time.Time
	finalized  bool
	recovered  *replayed
}

// newRecording opens a recording's spool folder and journal; st is its replayed journal when
// it is resumed, nil when it is new.
func (a *Archive) newRecording(m meta, bkt bucket.Store, st *replayed) (*recording, error) {
	q, err := a.sp.Open(m.ID)
	if err != nil {
		return nil, err
	}
	j, err := openJournal(q.Dir(), q.Grew)
	if err != nil {
		return nil, err
	}
	r := &recording{a: a, meta: m, q: q, bkt: bkt, j: j, attach: make(chan store.Live, 1), recovered: st,
		log: a.log.With("recording", m.ID, "channel", m.ChannelID)}
	r.tm = thumbnailer{r: r}
	if st == nil {
		if err := j.add(entry{Kind: kindStart, Meta: &m}); err != nil {
			j.close()
			return nil, err
		}
		return r, nil
	}
	r.streams, r.renditions, r.thumbs, r.thumbN, r.lost = st.streams, st.renditions, st.thumbs, st.thumbN, st.lost
	r.finalized = st.final
	return r, nil
}

// following reports whether the recording is reading a live stream.
func (r *recording) following() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phase == phaseLive
}

// offer answers the archive's question about a channel's live stream l.
type offerResult int

const (
	offerTaken   offerResult = iota // the recording has or now takes the stream
	offerWait                       // ask again later
	offerRefused                    // start a new recording
)

// offer hands a new stream of the channel to the recording when IVS's merge rules allow:
// the recording waits in its reconnect window, the configuration is unchanged, and the media
// parameters match the first stream's (same size, frame rate and codecs, bitrate within 50 %).
func (r *recording) offer(l store.Live, configID string, st *store.Store) offerResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.streams {
		if s.ID == l.StreamID {
			return offerTaken
		}
	}
	switch r.phase {
	case phaseLive:
		return offerWait // the previous stream's end has not been read yet
	case phaseFinalizing:
		return offerRefused
	}
	if r.finalized || configID != r.meta.Config.ID || r.meta.Config.ReconnectWindowSeconds == 0 ||
		len(r.streams) >= maxMergedStreams || time.Since(r.meta.StartedAt) > maxMergedAge ||
		time.Since(r.endedAt) > time.Duration(r.meta.Config.ReconnectWindowSeconds)*time.Second {
		r.phase = phaseFinalizing
		return offerRefused
	}
	ss, _ := st.Sessions.Get(store.SessionKey(l.ChannelID, l.StreamID))
	if ss.Ingest == nil {
		if time.Since(l.StartTime) < 10*time.Second {
			return offerWait // the ingest describes the stream a moment after it starts
		}
		r.phase = phaseFinalizing
		return offerRefused
	}
	var first *store.IngestConfig
	if len(r.streams) > 0 {
		if r.streams[0].Ingest == nil {
			// The ingest describes a stream a moment after it starts, often after the
			// recording took note of it.
			s0, _ := st.Sessions.Get(store.SessionKey(r.meta.ChannelID, r.streams[0].ID))
			r.streams[0].Ingest = s0.Ingest
		}
		first = r.streams[0].Ingest
	}
	if !sameMedia(first, ss.Ingest) {
		r.log.Info("new stream's media differs; starting a new recording", "stream", l.StreamID)
		r.phase = phaseFinalizing
		return offerRefused
	}
	r.phase = phaseLive
	r.attach <- l
	return offerTaken
}

// sameMedia applies IVS's merge conditions to two streams' ingest descriptions.
func sameMedia(a, b *store.IngestConfig) bool {
	if a == nil || b == nil || (a.Video == nil) != (b.Video == nil) || (a.Audio == nil) != (b.Audio == nil) {
		return false
	}
	within := func(x, y int64) bool {
		if x <= 0 || y <= 0 {
			return true // not announced by the publisher: nothing to compare
		}
		return float64(y) >= 0.5*float64(x) && float64(y) <= 1.5*float64(x)
	}
	if v, w := a.Video, b.Video; v != nil {
		if v.Codec != w.Codec || v.Width != w.Width || v.Height != w.Height || v.TargetFramerate != w.TargetFramerate ||
			!within(v.TargetBitrate, w.TargetBitrate) {
			return false
		}
	}
	if x, y := a.Audio, b.Audio; x != nil {
		if x.Codec != y.Codec || !within(x.TargetBitrate, y.TargetBitrate) {
			return false
		}
	}
	return true
}

// run drives the recording: its first stream (l, when new), the streams merged into it during
// reconnect windows, then its final files and their upload. A resumed recording first repairs
// what the killed process left half written.
func (r *recording) run(ctx context.Context, l *store.Live) {
	ctx, done := context.WithCancel(ctx) // ends the recording's helpers (uploader, thumbnails) with it
	defer done()
	defer r.j.close()
	upCtx, stopUploads := context.WithCancel(ctx)
	defer stopUploads()
	go r.q.Run(upCtx, r.bkt, r.meta.Prefix, r.dropped)

	claimCtx, dropClaim := context.WithCancel(ctx)
	defer dropClaim()
	if !r.finalized {
		go r.holdClaim(claimCtx)
	}
	if r.recovered != nil {
		r.repair()
		if !r.finalized {
			r.mu.Lock()
			r.phase, r.endedAt = phaseWaiting, r.recovered.last
			if !r.recovered.ended.IsZero() {
				r.endedAt = r.recovered.ended
			}
			r.mu.Unlock()
			r.resumeLive(ctx)
		}
	} else if l != nil {
		r.record(ctx, *l)
	}
	for !r.finalized {
		window := time.Duration(r.meta.Config.ReconnectWindowSeconds) * time.Second
		r.mu.Lock()
		wait := time.Until(r.endedAt.Add(window))
		r.mu.Unlock()
		timer := time.NewTimer(max(wait, 0))
		select {
		case next := <-r.attach:
			timer.Stop()
			r.record(ctx, next)
			continue
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		r.mu.Lock()
		if r.phase == phaseLive { // a stream was attached as the window closed
			r.mu.Unlock()
			continue
		}
		r.phase = phaseFinalizing
		r.mu.Unlock()
		dropClaim()
		r.a.claims.release(context.WithoutCancel(ctx), r.meta.ChannelID)
		r.finalize(ctx)
	}
	r.tm.wait()
	r.upload(ctx)
}

// holdClaim keeps the recording's claim on its channel while later streams may join it.
func (r *recording) holdClaim(ctx context.Context) {
	t := time.NewTicker(claimTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.a.claims.refresh(ctx, r.meta.ChannelID); err != nil && ctx.Err() == nil {
				r.log.Warn("refresh recording claim", "err", err)
			}
		}
	}
}

// resumeLive continues recording after a restart when the stream the killed process was
// recording is still live (the archive ran apart from the ingest).
func (r *recording) resumeLive(ctx context.Context) {
	l, ok := r.a.st.Live.Get(r.meta.ChannelID)
	if !ok || !r.a.fresh(l) {
		return
	}
	r.mu.Lock()
	known := false
	for _, s := range r.streams {
		known = known || s.ID == l.StreamID
	}
	r.mu.Unlock()
	if known {
		r.record(ctx, l)
	}
}

// upload waits until every object is in the bucket, then announces the end and forgets the
// recording. A run that stops first leaves the rest to the next.
func (r *recording) upload(ctx context.Context) {
	select {
	case <-r.q.Idle():
	case <-ctx.Done():
		return
	}
	r.mu.Lock()
	if len(r.renditions) == 0 {
		r.mu.Unlock()
		r.j.close()
		_ = r.q.Remove()
		r.a.forget(r)
		return
	}
	status, reason := RecordingEnd, ""
	if r.lost != "" {
		status, reason = RecordingEndFailure, "InternalServerException"
	}
	ids := make([]string, 0, len(r.streams))
	for _, s := range r.streams {
		ids = append(ids, s.ID)
	}
	dur := r.layoutLocked().Duration()
	r.mu.Unlock()
	last := ""
	if len(ids) > 0 {
		last = ids[len(ids)-1]
	}
	r.a.events.RecordingEvent(ctx, Event{Time: time.Now().UTC(), Status: status, ChannelID: r.meta.ChannelID,
		ChannelARN: r.meta.ChannelARN, ChannelName: r.meta.ChannelName, StreamID: last, StreamIDs: ids, Reason: reason,
		Bucket: r.meta.Bucket, Prefix: r.meta.Prefix, DurationMS: dur.Milliseconds(), RecordingID: r.meta.ID})
	r.log.Info("recording complete in its bucket", "bucket", r.bkt.Location(), "prefix", r.meta.Prefix,
		"duration", dur.Round(time.Millisecond), "status", status)
	r.j.close()
	if err := r.q.Remove(); err != nil {
		r.log.Warn("remove spooled recording", "err", err)
	}
	r.a.forget(r)
}

// markLost records that data was lost; the recording will end with recording-failed.json.
// Called with r.mu held.
func (r *recording) markLost(reason string) {
	if r.lost == "" {
		r.lost = reason
		r.log.Error("recording lost data; it will end as failed", "reason", reason)
	}
	_ = r.j.add(entry{Kind: kindLost, Reason: reason})
}

// layoutLocked is the recording as the layout package renders it. Called with r.mu held.
func (r *recording) layoutLocked() *layout.Recording {
	lr := &layout.Recording{ChannelARN: r.meta.ChannelARN, ChannelID: r.meta.ChannelID, Account: r.a.cfg.Account,
		StartedAt: r.meta.StartedAt, Thumbnails: r.thumbs}
	for _, rs := range r.renditions {
		lr.Renditions = append(lr.Renditions, rs.lr)
	}
	return lr
}
