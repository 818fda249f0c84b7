package packager

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strings"

	"glasscast/media"
	"glasscast/metadata"
)

// writeSeeker is the io.WriteSeeker mediacommon marshals a part into. It writes straight into
// the part's byte slice, after the emsg boxes already there, so a part is built in one buffer
// that the output may keep.
type writeSeeker struct {
	b   []byte
	pos int
}

func (w *writeSeeker) Write(p []byte) (int, error) {
	n := copy(w.b[w.pos:], p) // mediacommon seeks back to rewrite box headers
	w.b = append(w.b, p[n:]...)
	w.pos += len(p)
	return len(p), nil
}

func (w *writeSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += int64(w.pos)
	case io.SeekEnd:
		off += int64(len(w.b))
	}
	if off < 0 || off > int64(len(w.b)) {
		return 0, errors.New("seek outside the part")
	}
	w.pos = int(off)
	return off, nil
}

// appendCue writes a cue's emsg boxes. The emsg id is derived from the cue, not counted, so
// every rendition's packager and a reconnected one give the same cue the same id and players
// that de-duplicate events by id see it once.
func appendCue(dst []byte, c media.Cue, presentationTime uint64) ([]byte, error) {
	h := fnv.New32a()
	if c.ID != "" {
		h.Write([]byte(c.ID))
	} else {
		h.Write([]byte(c.Time.UTC().Format("2006-01-02T15:04:05.999999999Z") + c.Text))
	}
	b, err := metadata.AppendEmsg(dst, metadata.Event{
		ID:               h.Sum32(),
		Timescale:        videoTimescale,
		PresentationTime: presentationTime,
		Text:             c.Text,
	})
	if err != nil {
		return dst, fmt.Errorf("cue %q: %w", c.ID, err)
	}
	return b, nil
}

func joinCodecs(names []string) string {
	var kept []string
	for _, n := range names {
		if n != "" {
			kept = append(kept, n)
		}
	}
	return strings.Join(kept, ",")
}

func slogLevel(quiet bool) slog.Level {
	if quiet {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

func (p *Packager) describeVideo(params *videoParams) (videoInfo, error) {
	if params == nil || params.sps == nil {
		return videoInfo{}, errors.New("no SPS")
	}
	if p.h265 {
		return describeH265(params.sps)
	}
	return describeH264(params.sps)
}
