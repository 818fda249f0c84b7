package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"glasscast/archive/source"
	"glasscast/store"
)

// record follows live stream l until it ends, writing every selected rendition.
func (r *recording) record(ctx context.Context, l store.Live) {
	r.mu.Lock()
	r.phase, r.endedAt = phaseLive, time.Time{}
	known := false
	for _, s := range r.streams {
		known = known || s.ID == l.StreamID
	}
	r.mu.Unlock()
	if !known {
		ss, _ := r.a.st.Sessions.Get(store.SessionKey(l.ChannelID, l.StreamID))
		r.mu.Lock()
		r.streams = append(r.streams, streamRef{ID: l.StreamID, Ingest: ss.Ingest})
		_ = r.j.add(entry{Kind: kindStream, Stream: l.StreamID, Ingest: ss.Ingest})
		r.mu.Unlock()
		r.log.Info("recording stream", "stream", l.StreamID, "streams", len(r.streams))
	}
	defer r.streamEnded(ctx)

	o := r.a.originFor(l)
	if o == nil {
		r.mu.Lock()
		r.markLost("no origin to read the stream from: set archive.originUrl")
		r.mu.Unlock()
		return
	}
	var variants []source.Variant
	for {
		// Until the stream's first segments reach it, the origin may still serve the
		// channel's previous broadcast, ended: that one is not this stream.
		vs, err := o.Variants(ctx, l.ChannelID)
		if err == nil {
			var live bool
			if live, err = o.Live(ctx, l.ChannelID, vs[0].Rendition); err == nil && live {
				if vs, err = o.Variants(ctx, l.ChannelID); err == nil {
					variants = vs
					break
				}
			}
		}
		if ctx.Err() != nil || !r.a.alive(l.ChannelID, l.StreamID) {
			return // ended before anything could be read
		}
		r.log.Debug("multivariant playlist not ready", "err", err)
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}

	r.mu.Lock()
	first := len(r.renditions) == 0
	if first {
		r.addRenditionsLocked(ctx, r.plan(variants))
	}
	r.tm.setupLocked(ctx)
	r.mu.Unlock()
	if first {
		r.a.events.RecordingEvent(ctx, Event{Time: time.Now().UTC(), Status: RecordingStart, ChannelID: r.meta.ChannelID,
			ChannelARN: r.meta.ChannelARN, ChannelName: r.meta.ChannelName, StreamID: l.StreamID, Bucket: r.meta.Bucket,
			Prefix: r.meta.Prefix, RecordingID: r.meta.ID})
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	finished := make(chan struct{}, 64)
	active := 0
	following := map[*renditionState]bool{}
	start := func(vs []source.Variant) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, rs := range r.renditions {
			v, ok := matchVariant(vs, rs)
			if following[rs] || !ok {
				continue
			}
			from := uint64(0)
			if (rs.source == "" || rs.source == v.Rendition) && rs.nextMSN > 0 && r.sameStreamLocked(l.StreamID) {
				from = rs.nextMSN // a restarted archive continues the stream where it stopped
			} else if len(rs.lr.Files) > 0 {
				rs.newStream = true
			}
			rs.source = v.Rendition
			following[rs] = true
			active++
			wg.Add(1)
			go func() {
				defer func() { finished <- struct{}{}; wg.Done() }()
				r.follow(ctx, o, l, rs, from)
			}()
		}
	}
	start(variants)
	// A transcoded channel's ladder fills in over its first seconds: renditions that appear
	// later are recorded too, from their first segment, which the origin still holds.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			if active--; active == 0 {
				return
			}
		case <-tick.C:
			if !r.a.alive(l.ChannelID, l.StreamID) {
				if active == 0 {
					return
				}
				continue
			}
			vs, err := o.Variants(ctx, l.ChannelID)
			if err != nil {
				continue
			}
			r.mu.Lock()
			r.addRenditionsLocked(ctx, r.plan(vs))
			r.mu.Unlock()
			start(vs)
		case <-ctx.Done():
			return
		}
	}
}

// addRenditionsLocked adds the planned renditions the recording does not have yet, and
// republishes the multivariant playlists and recording-started.json when there are any.
func (r *recording) addRenditionsLocked(ctx context.Context, planned []*renditionState) {
	added := false
	for _, p := range planned {
		exists := false
		for _, rs := range r.renditions {
			exists = exists || rs.lr.Name == p.lr.Name
		}
		if exists {
			continue
		}
		r.renditions = append(r.renditions, p)
		_ = r.j.add(entry{Kind: kindRendition, Rendition: p.lr})
		added = true
	}
	if !added {
		return
	}
	slices.SortStableFunc(r.renditions, func(a, b *renditionState) int {
		return cmp.Or(cmp.Compare(b.lr.Height, a.lr.Height), cmp.Compare(b.lr.Bandwidth, a.lr.Bandwidth))
	})
	r.tm.setupLocked(ctx) // the event file describes the thumbnails
	if err := r.writeHeadLocked(); err != nil {
		r.markLost("spool: " + err.Error())
	}
}

// sameStreamLocked reports whether streamID is the stream the recording was following last.
func (r *recording) sameStreamLocked(streamID string) bool {
	return len(r.streams) > 0 && r.streams[len(r.streams)-1].ID == streamID && r.recovered != nil
}

// streamEnded closes the stream's files and starts the reconnect window.
func (r *recording) streamEnded(ctx context.Context) {
	if ctx.Err() != nil {
		return // stopping: the files stay as they are for the next run
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.renditions {
		r.closeFileLocked(rs)
		rs.disc = true
	}
	r.endedAt = time.Now()
	if r.phase == phaseLive {
		r.phase = phaseWaiting
	}
	_ = r.j.add(entry{Kind: kindEnded, At: r.endedAt})
}

// follow reads one rendition of stream l until the stream ends.
func (r *recording) follow(ctx context.Context, o *source.Origin, l store.Live, rs *renditionState, from uint64) {
	f := o.Follow(l.ChannelID, rs.source, from)
	backoff := 100 * time.Millisecond
	for {
		seg, err := f.Next(ctx)
		var gap *source.Gap
		switch {
		case err == nil:
			backoff = 100 * time.Millisecond
			r.write(ctx, rs, seg)
			continue
		case errors.Is(err, io.EOF):
			return
		case ctx.Err() != nil:
			return
		case errors.As(err, &gap):
			if !r.a.alive(l.ChannelID, l.StreamID) {
				return // the origin moved on to another stream: this one ended
			}
			r.mu.Lock()
			r.markLost(fmt.Sprintf("%s: %v", rs.lr.Name, gap))
			r.closeFileLocked(rs)
			rs.disc = true
			r.mu.Unlock()
			continue
		}
		if !r.a.alive(l.ChannelID, l.StreamID) {
			if !errors.Is(err, source.ErrOffline) {
				r.log.Warn("stream ended while its origin was unreachable", "rendition", rs.lr.Name, "err", err)
			}
			return
		}
		r.log.Debug("reading the origin", "rendition", rs.lr.Name, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
