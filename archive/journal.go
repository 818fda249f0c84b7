package archive

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"glasscast/archive/layout"
	"glasscast/archive/remux"
	"glasscast/store"
)

// journal is a recording's append-only log in its spool folder. Every change to what the
// recording holds is a line, written after the media it describes is on disk, so that a
// process killed at any moment restarts with a recording that is exactly what its files hold.
type journal struct {
	f    *os.File
	grew func(int64) // told of the bytes the journal adds to, or cuts from, the spool folder
}

// meta identifies a recording; it is the journal's first line.
type meta struct {
	ID          string                       `json:"id"`
	ChannelID   string                       `json:"channelId"`
	ChannelARN  string                       `json:"channelArn"`
	ChannelName string                       `json:"channelName"`
	Bucket      string                       `json:"bucket"`
	Prefix      string                       `json:"prefix"`
	StartedAt   time.Time                    `json:"startedAt"`
	Config      store.RecordingConfiguration `json:"config"`
}

// entry kinds.
const (
	kindStart     = "start"     // Meta
	kindStream    = "stream"    // Stream, Ingest: a stream joined the recording
	kindRendition = "rendition" // Rendition (without files)
	kindChunks    = "chunks"    // R, N, From, Chunks, Size, MSN, Disc: TS file N grew
	kindClose     = "close"     // R, N, Size: TS file N is complete and queued
	kindDrop      = "drop"      // R, N, Reason: TS file N is lost
	kindThumb     = "thumb"     // N, Thumbs
	kindLost      = "lost"      // Reason: data was lost
	kindEnded     = "ended"     // At: the last stream ended
	kindFinal     = "final"     // At, Reason: the recording is closed, its last files queued
)

type entry struct {
	Kind      string              `json:"k"`
	At        time.Time           `json:"at,omitzero"`
	Meta      *meta               `json:"meta,omitempty"`
	Stream    string              `json:"stream,omitempty"`
	Ingest    *store.IngestConfig `json:"ingest,omitempty"`
	Rendition *layout.Rendition   `json:"rendition,omitempty"`
	R         string              `json:"r,omitempty"`
	N         int                 `json:"n,omitempty"`
	From      int                 `json:"from,omitempty"`
	Chunks    []remux.Chunk       `json:"chunks,omitempty"`
	Size      int64               `json:"size,omitempty"`
	MSN       uint64              `json:"msn,omitempty"`
	Disc      bool                `json:"disc,omitempty"`
	AdMarkers []string            `json:"ads,omitempty"` // the file's, for the playlists
	Thumbs    *layout.Thumbnails  `json:"thumbs,omitempty"`
	Reason    string              `json:"reason,omitempty"`
}

func journalPath(dir string) string { return filepath.Join(dir, "journal.jsonl") }

// openJournal opens dir's journal for appending. A torn tail left by a kill mid-write is cut
// off first: readJournal stops at the first line it cannot read, so entries appended after a
// torn line (a resumed recording's repairs, chunks and end) would be lost on the next replay,
// and the recording rebuilt from an older state.
func openJournal(dir string, grew func(int64)) (*journal, error) {
	f, err := os.OpenFile(journalPath(dir), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	b, err := io.ReadAll(f)
	if err == nil {
		n, whole := readablePrefix(b)
		switch {
		case n < len(b):
			if err = f.Truncate(int64(n)); err == nil {
				grew(int64(n - len(b)))
			}
		case !whole:
			// A last entry that lacks only its newline is kept.
			if _, err = f.Write([]byte{'\n'}); err == nil {
				grew(1)
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal: cut its torn tail: %w", err)
	}
	return &journal{f: f, grew: grew}, nil
}

// readablePrefix is the length of b's leading lines that readJournal reads, up to the first
// that is not an entry (a torn one), and whether it ends with a newline: as readJournal does,
// it takes a last line that is a whole entry without its newline.
func readablePrefix(b []byte) (n int, whole bool) {
	for n < len(b) {
		line, rest, found := bytes.Cut(b[n:], []byte{'\n'})
		var e entry
		if json.Unmarshal(line, &e) != nil {
			return n, true
		}
		if !found {
			return len(b), false
		}
		n = len(b) - len(rest)
	}
	return n, true
}

// add appends entries and syncs them to disk.
func (j *journal) add(es ...entry) error {
	var buf bytes.Buffer
	for _, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	n, err := j.f.Write(buf.Bytes())
	j.grew(int64(n))
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return j.f.Sync()
}

func (j *journal) close() { _ = j.f.Close() }

// replayed is a recording's state rebuilt from its journal.
type replayed struct {
	meta       *meta
	streams    []streamRef
	renditions []*renditionState
	thumbN     int
	thumbs     *layout.Thumbnails
	lost       string
	ended      time.Time
	final      bool
	finalAt    time.Time
	last       time.Time // when the journal was last written
}

// readJournal rebuilds the state. A torn last line (a kill mid-write) is ignored: the media it
// would have described is treated as never written.
func readJournal(dir string) (*replayed, error) {
	b, err := os.ReadFile(journalPath(dir))
	if err != nil {
		return nil, err
	}
	st := &replayed{}
	if fi, err := os.Stat(journalPath(dir)); err == nil {
		st.last = fi.ModTime()
	}
	byName := map[string]*renditionState{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			break
		}
		switch e.Kind {
		case kindStart:
			st.meta = e.Meta
		case kindStream:
			st.streams = append(st.streams, streamRef{ID: e.Stream, Ingest: e.Ingest})
		case kindRendition:
			if e.Rendition != nil && byName[e.Rendition.Name] == nil {
				rs := &renditionState{lr: e.Rendition}
				rs.lr.Files = nil
				byName[rs.lr.Name] = rs
				st.renditions = append(st.renditions, rs)
			}
		case kindChunks:
			rs := byName[e.R]
			if rs == nil {
				continue
			}
			f := rs.fileN(e.N)
			if f == nil {
				rs.lr.Files = append(rs.lr.Files, layout.File{N: e.N, Discontinuity: e.Disc, AdMarkers: e.AdMarkers})
				f = &rs.lr.Files[len(rs.lr.Files)-1]
				rs.open = true
			}
			if e.From <= len(f.Chunks) {
				f.Chunks = append(f.Chunks[:e.From], e.Chunks...)
			}
			rs.size, rs.nextMSN = e.Size, e.MSN+1
		case kindClose:
			if rs := byName[e.R]; rs != nil && rs.fileN(e.N) != nil && rs.open && rs.lastN() == e.N {
				rs.open, rs.size = false, 0
			}
		case kindDrop:
			if rs := byName[e.R]; rs != nil {
				if f := rs.fileN(e.N); f != nil {
					f.Dropped = true
				}
			}
		case kindThumb:
			st.thumbN = e.N + 1
			st.thumbs = e.Thumbs
		case kindLost:
			if st.lost == "" {
				st.lost = e.Reason
			}
		case kindEnded:
			st.ended = e.At
		case kindFinal:
			st.final, st.finalAt = true, e.At
			if st.lost == "" {
				st.lost = e.Reason
			}
		}
	}
	if st.meta == nil {
		return nil, errors.New("journal has no start entry")
	}
	return st, nil
}
