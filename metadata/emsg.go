package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	mp4 "github.com/abema/go-mp4"
)

const (
	// SchemeAOM is the scheme_id_uri of AOM's "Carriage of ID3 Timed Metadata in CMAF"; hls.js
	// and Safari read version 1 boxes with it.
	SchemeAOM = "https://aomedia.org/emsg/ID3"
	// SchemeTwitch is the scheme_id_uri Amazon's IVS player fires cues for, only in version 0
	// boxes.
	SchemeTwitch = "urn:twitch:id3"
	// Value is the emsg value field Glasscast writes: a user-defined label of the event source.
	Value = "glasscast"
	// DurationUnknown is the event_duration of an open-ended event: a cue lasts until the next.
	DurationUnknown = 0xFFFFFFFF
)

// Event is one timed-metadata event to be written in front of a part.
type Event struct {
	// ID identifies the event; players may drop a second event with the same scheme and ID, so
	// it should be the same in every rendition and unique within the broadcast.
	ID uint32
	// Timescale counts PresentationTime's ticks per second.
	Timescale uint32
	// PresentationTime is the instant of the event on the media timeline (the one tfdt counts
	// on), inside the time interval of the part that carries it.
	PresentationTime uint64
	Text             string
}

// AppendEmsg appends the two emsg boxes that carry e to dst: a version 1 box with SchemeAOM and
// an absolute presentation time, then its version 0 twin with SchemeTwitch and a zero
// presentation time delta (the event starts with the part). Both hold the same ID3 tag.
func AppendEmsg(dst []byte, e Event) ([]byte, error) {
	if e.Timescale == 0 {
		return dst, errors.New("emsg: zero timescale")
	}
	tag, err := ID3(e.Text)
	if err != nil {
		return dst, fmt.Errorf("emsg: %w", err)
	}
	dst, err = appendBox(dst, &mp4.Emsg{
		FullBox:          mp4.FullBox{Version: 1},
		SchemeIdUri:      SchemeAOM,
		Value:            Value,
		Timescale:        e.Timescale,
		PresentationTime: e.PresentationTime,
		EventDuration:    DurationUnknown,
		Id:               e.ID,
		MessageData:      tag,
	})
	if err != nil {
		return dst, fmt.Errorf("emsg v1: %w", err)
	}
	dst, err = appendBox(dst, &mp4.Emsg{
		FullBox:       mp4.FullBox{Version: 0},
		SchemeIdUri:   SchemeTwitch,
		Value:         Value,
		Timescale:     e.Timescale,
		EventDuration: DurationUnknown,
		Id:            e.ID,
		MessageData:   tag,
	})
	if err != nil {
		return dst, fmt.Errorf("emsg v0: %w", err)
	}
	return dst, nil
}

// sliceWriter lets go-mp4 marshal straight into the destination slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// appendBox appends box with a compact header. The header is reserved first and filled in once
// the payload size is known, so the payload is written only once.
func appendBox(dst []byte, box mp4.IImmutableBox) ([]byte, error) {
	start := len(dst)
	w := &sliceWriter{b: append(dst, make([]byte, mp4.SmallHeaderSize)...)}
	n, err := mp4.Marshal(w, box, mp4.Context{})
	if err != nil {
		return dst, err
	}
	size := mp4.SmallHeaderSize + n
	if size > 1<<32-1 {
		return dst, fmt.Errorf("box of %d bytes needs a large header", size)
	}
	hdr := mp4.EncodeBoxInfo(&mp4.BoxInfo{Type: box.GetType(), Size: size, HeaderSize: mp4.SmallHeaderSize})
	copy(w.b[start:], hdr)
	return w.b, nil
}

// Message is one emsg box read back from a part or a segment.
type Message struct {
	Version     uint8
	SchemeIDURI string
	Value       string
	Timescale   uint32
	// PresentationTime is set by version 1 boxes, PresentationTimeDelta (relative to the start
	// of the fragment that follows) by version 0 boxes.
	PresentationTime      uint64
	PresentationTimeDelta uint32
	EventDuration         uint32
	ID                    uint32
	Data                  []byte // message_data
	// Text is the TXXX value when the scheme says Data is an ID3 tag.
	Text string
}

// ParseEmsg returns the emsg boxes at the top level of data (a part, a segment, or several
// concatenated), in order. Other boxes are skipped without being read. It fails on a truncated
// or malformed box and on an ID3-scheme box whose tag holds no readable TXXX frame.
func ParseEmsg(data []byte) ([]Message, error) {
	var msgs []Message
	r := bytes.NewReader(data)
	for off := 0; off < len(data); {
		if _, err := r.Seek(int64(off), io.SeekStart); err != nil {
			return nil, err
		}
		bi, err := mp4.ReadBoxInfo(r)
		if err != nil {
			return nil, fmt.Errorf("box at %d: %w", off, err)
		}
		if bi.Size < bi.HeaderSize || bi.Size > uint64(len(data)-off) {
			return nil, fmt.Errorf("box %q at %d: size %d does not fit in %d bytes", bi.Type, off, bi.Size, len(data)-off)
		}
		end := off + int(bi.Size)
		if bi.Type == mp4.BoxTypeEmsg() {
			m, err := parseEmsgPayload(data[off+int(bi.HeaderSize) : end])
			if err != nil {
				return nil, fmt.Errorf("emsg at %d: %w", off, err)
			}
			msgs = append(msgs, m)
		}
		off = end
	}
	return msgs, nil
}

func parseEmsgPayload(payload []byte) (Message, error) {
	var box mp4.Emsg
	// A reader bounded to the payload keeps go-mp4's string reads from running into the next box.
	if _, err := mp4.Unmarshal(bytes.NewReader(payload), uint64(len(payload)), &box, mp4.Context{}); err != nil {
		return Message{}, err
	}
	m := Message{
		Version:               box.GetVersion(),
		SchemeIDURI:           box.SchemeIdUri,
		Value:                 box.Value,
		Timescale:             box.Timescale,
		PresentationTime:      box.PresentationTime,
		PresentationTimeDelta: box.PresentationTimeDelta,
		EventDuration:         box.EventDuration,
		ID:                    box.Id,
		Data:                  box.MessageData,
	}
	if isID3Scheme(m.SchemeIDURI) {
		text, err := ID3Text(m.Data)
		if err != nil {
			return Message{}, fmt.Errorf("scheme %s: %w", m.SchemeIDURI, err)
		}
		m.Text = text
	}
	return m, nil
}

func isID3Scheme(s string) bool {
	switch s {
	case SchemeAOM, SchemeTwitch, "https://developer.apple.com/streaming/emsg-id3":
		return true
	}
	return false
}
