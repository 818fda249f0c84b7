package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"glasscast/archive/layout"
	"glasscast/archive/remux"
	"glasscast/archive/source"
	"glasscast/archive/spool"
)

// write adds one segment to the rendition's current TS file, starting a file when the
// current one is long enough, a discontinuity comes, or the init segment changed.
func (r *recording) write(ctx context.Context, rs *renditionState, seg *source.Segment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seg.InitURI != rs.initURI {
		tracks, err := remux.ParseInit(seg.Init)
		if err != nil {
			r.markLost(fmt.Sprintf("%s: segment %d: %v", rs.lr.Name, seg.MSN, err))
			return
		}
		if rs.audioOnly {
			tracks.Video = nil
			if tracks.Audio == nil {
				return
			}
		}
		if rs.tl == nil {
			rs.tl = remux.NewTimeline(rs.elapsed())
			rs.newStream = true
		}
		r.closeFileLocked(rs) // a file holds one set of tracks
		rs.tl.SetInit(tracks)
		rs.initURI = seg.InitURI
	}
	if seg.Discontinuity || rs.newStream {
		r.closeFileLocked(rs)
		rs.disc = rs.disc || seg.Discontinuity
	}
	// An ad break's splice point starts a file, so the recording's playlists can put its
	// markers in front of the file at the right media time.
	if rs.open && (rs.ts.Duration() >= r.a.cfg.SegmentTarget || len(seg.AdMarkers) > 0) {
		r.closeFileLocked(rs)
	}
	if !rs.open {
		if !r.openFileLocked(rs) {
			return
		}
		rs.lr.Files[len(rs.lr.Files)-1].AdMarkers = seg.AdMarkers
	}
	reserve := int64(len(seg.Data))*5/4 + 64<<10 // TS costs more than fMP4: 188-byte packets, PES headers
	if err := r.q.Reserve(reserve); err != nil {
		r.markLost(fmt.Sprintf("%s: segment %d not recorded: %v", rs.lr.Name, seg.MSN, err))
		r.closeFileLocked(rs)
		rs.disc = true
		return
	}
	from, kfs, err := rs.ts.WriteSegment(remux.Segment{Data: seg.Data, PDT: seg.PDT, Discontinuity: seg.Discontinuity || rs.newStream},
		remux.WriteOptions{WantKeyframe: r.tm.want(rs)})
	if err == nil {
		err = rs.ts.Flush()
	}
	if err == nil {
		err = rs.fh.Sync()
	}
	grown := rs.ts.Size() - rs.size
	r.q.Release(reserve - grown)
	if err != nil {
		r.markLost(fmt.Sprintf("%s: segment %d: %v", rs.lr.Name, seg.MSN, err))
		r.closeFileLocked(rs)
		rs.disc = true
		return
	}
	rs.newStream = false
	rs.size = rs.ts.Size()
	if f := r.a.cfg.Recorded; f != nil && len(r.renditions) > 0 && rs == r.renditions[0] {
		f(r.meta.ChannelID, seg.Duration)
	}
	f := &rs.lr.Files[len(rs.lr.Files)-1]
	chunks := rs.ts.Chunks()
	f.Chunks = append(f.Chunks[:0], chunks...)
	rs.nextMSN = seg.MSN + 1
	if err := r.j.add(entry{Kind: kindChunks, R: rs.lr.Name, N: f.N, From: from, Chunks: chunks[from:], Size: rs.size,
		MSN: seg.MSN, Disc: f.Discontinuity, AdMarkers: f.AdMarkers}); err != nil {
		r.markLost("journal: " + err.Error())
	}
	for _, kf := range kfs {
		r.tm.add(ctx, kf)
	}
}

// openFileLocked starts the rendition's next TS file.
func (r *recording) openFileLocked(rs *renditionState) bool {
	n := rs.lastN() + 1
	fh, err := r.q.Create(layout.SegmentKey(rs.lr.Name, n))
	if err == nil {
		rs.ts, err = remux.Create(fh, rs.tl)
		if err != nil {
			fh.Close()
		}
	}
	if err != nil {
		r.markLost(fmt.Sprintf("%s: file %d: %v", rs.lr.Name, n, err))
		return false
	}
	rs.fh, rs.open, rs.size = fh, true, 0
	rs.lr.Files = append(rs.lr.Files, layout.File{N: n, Discontinuity: rs.disc && len(rs.lr.Files) > 0})
	rs.disc = false
	return true
}

// closeFileLocked completes the open TS file, queues it, and publishes the grown playlists.
func (r *recording) closeFileLocked(rs *renditionState) {
	if !rs.open {
		return
	}
	rs.open = false
	f := &rs.lr.Files[len(rs.lr.Files)-1]
	key := layout.SegmentKey(rs.lr.Name, f.N)
	if rs.fh != nil {
		_ = rs.fh.Close()
		rs.fh, rs.ts = nil, nil
	}
	if len(f.Chunks) == 0 {
		r.q.Discard(key, rs.size)
		rs.lr.Files = rs.lr.Files[:len(rs.lr.Files)-1]
		return
	}
	if err := r.q.Commit(key, rs.size); err != nil {
		r.markLost(fmt.Sprintf("%s: %v", key, err))
		return
	}
	_ = r.j.add(entry{Kind: kindClose, R: rs.lr.Name, N: f.N, Size: rs.size})
	rs.size = 0
	r.writePlaylistsLocked(rs, false)
}

// writePlaylistsLocked queues a rendition's two playlists.
func (r *recording) writePlaylistsLocked(rs *renditionState, ended bool) {
	base := layout.HLSPath + "/" + rs.lr.Name + "/"
	if err := r.q.WriteFile(base+layout.MediaPlaylist, layout.Media(rs.lr, ended, time.Now())); err != nil {
		r.log.Warn("spool playlist", "err", err)
	}
	if err := r.q.WriteFile(base+layout.ByteRangeVariant, layout.ByteRange(rs.lr, ended)); err != nil {
		r.log.Warn("spool playlist", "err", err)
	}
}

// writeHeadLocked queues the multivariant playlists and recording-started.json.
func (r *recording) writeHeadLocked() error {
	lr := r.layoutLocked()
	if err := r.q.WriteFile(layout.HLSPath+"/"+layout.MasterPlaylist, layout.Master(lr, false)); err != nil {
		return err
	}
	if err := r.q.WriteFile(layout.HLSPath+"/"+layout.ByteRangeMultivariant, layout.Master(lr, true)); err != nil {
		return err
	}
	return r.q.WriteFile(layout.StartedEvent, layout.Event(lr, layout.StatusStarted, time.Time{}, ""))
}

// finalize closes the recording: the last files, playlists with EXT-X-ENDLIST, and the event
// file that says whether everything arrived.
func (r *recording) finalize(ctx context.Context) {
	r.tm.wait() // thumbnails under way belong in the recording
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.renditions {
		r.closeFileLocked(rs)
	}
	if len(r.renditions) == 0 {
		// The stream ended before it could be read: there is no recording to speak of.
		_ = r.j.add(entry{Kind: kindFinal, At: time.Now(), Reason: r.lost})
		r.finalized = true
		r.log.Info("stream ended before anything was recorded")
		return
	}
	r.writeFinalLocked()
	_ = r.j.add(entry{Kind: kindFinal, At: time.Now(), Reason: r.lost})
	r.finalized = true
	lr := r.layoutLocked()
	r.log.Info("recording finished; uploading the rest", "duration", lr.Duration().Round(time.Millisecond),
		"pending", r.q.Pending(), "lost", r.lost)
}

// writeFinalLocked queues the final playlists and event file, replacing an ended event file
// by a failed one when data was lost after it was written.
func (r *recording) writeFinalLocked() {
	for _, rs := range r.renditions {
		r.writePlaylistsLocked(rs, true)
	}
	lr := r.layoutLocked()
	_ = r.q.WriteFile(layout.HLSPath+"/"+layout.MasterPlaylist, layout.Master(lr, false))
	_ = r.q.WriteFile(layout.HLSPath+"/"+layout.ByteRangeMultivariant, layout.Master(lr, true))
	endedAt := r.endedAt
	if endedAt.IsZero() {
		endedAt = time.Now()
	}
	name, status, msg := layout.EndedEvent, layout.StatusEnded, ""
	if r.lost != "" {
		name, status, msg = layout.FailedEvent, layout.StatusEndedWithFailure, "InternalServerException: "+r.lost
		r.q.Cancel(layout.EndedEvent)
	}
	if err := r.q.WriteFile(name, layout.Event(lr, status, endedAt, msg)); err != nil {
		r.log.Error("spool event file", "err", err)
	}
}

// dropped hears from the uploader that a spooled file was given up.
func (r *recording) dropped(d spool.Drop) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.markLost(d.Rel + ": " + d.Reason)
	for _, rs := range r.renditions {
		for i := range rs.lr.Files {
			if layout.SegmentKey(rs.lr.Name, rs.lr.Files[i].N) == d.Rel {
				rs.lr.Files[i].Dropped = true
				_ = r.j.add(entry{Kind: kindDrop, R: rs.lr.Name, N: rs.lr.Files[i].N, Reason: d.Reason})
				r.writePlaylistsLocked(rs, r.finalized)
			}
		}
	}
	if r.finalized {
		r.writeFinalLocked()
	}
}

// repair makes a resumed recording's files match its journal: a TS file the killed process
// was writing is cut back to its last journaled segment and queued.
func (r *recording) repair() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.renditions {
		if !rs.open {
			continue
		}
		rs.open = false
		f := &rs.lr.Files[len(rs.lr.Files)-1]
		key := layout.SegmentKey(rs.lr.Name, f.N)
		if _, err := os.Stat(r.q.Path(key) + ".part"); errors.Is(err, fs.ErrNotExist) {
			// Committed just before the kill, ahead of its journal entry.
			_ = r.j.add(entry{Kind: kindClose, R: rs.lr.Name, N: f.N, Size: rs.size})
			rs.size, rs.disc = 0, true
			continue
		}
		if err := r.q.Commit(key, rs.size); err != nil {
			r.log.Warn("repair the file being written", "key", key, "err", err)
			f.Dropped = true
			r.markLost(fmt.Sprintf("%s: lost in a restart: %v", key, err))
			continue
		}
		_ = r.j.add(entry{Kind: kindClose, R: rs.lr.Name, N: f.N, Size: rs.size})
		rs.size = 0
		rs.disc = true
		r.writePlaylistsLocked(rs, r.finalized)
	}
	if r.finalized {
		r.writeFinalLocked() // the queued final files may have been lost with the process
	}
}
