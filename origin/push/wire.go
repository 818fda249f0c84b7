// Package push carries the ingest→origin hop over HTTP, for when ingest and origin run in
// different processes: Client is a media.Sink that POSTs each call to an origin, Handler decodes
// those requests and makes the same calls on the origin's media.Sink.
//
// Every request is POST <base>/<op> (op: open, init, part, close, batch) authenticated with a
// shared bearer token. Its body is a frame: the magic "GCP1", a big-endian uint32 length, that
// many bytes of JSON metadata, then the payload (the init segment or the part's bytes)
// unchanged. A batch body is a run of init and part frames, each preceded by its operation (one
// length byte, then the name) and its length (big-endian uint32): what queued up for an origin
// across a slow link during the previous request goes in one round trip.
package push

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"glasscast/media"
)

// The operations, the last element of the request path.
const (
	opOpen  = "open"
	opInit  = "init"
	opPart  = "part"
	opClose = "close"
	opBatch = "batch"
)

const (
	frameMagic  = "GCP1"
	frameHeader = len(frameMagic) + 4
	// maxMeta bounds the JSON metadata: a stream, a rendition or a part's fields and cues.
	maxMeta = 64 << 10
	// contentType marks push frames.
	contentType = "application/vnd.glasscast.push"
)

// meta is a frame's metadata. Every frame names its stream in full, so that a handler that
// lost its state (an origin restart) can open the broadcast again from any request.
type meta struct {
	Stream    media.Stream     `json:"stream"`
	Rendition *media.Rendition `json:"rendition,omitempty"` // init
	Name      string           `json:"name,omitempty"`      // part: the rendition
	Part      *media.Part      `json:"part,omitempty"`      // part: everything but Data
}

// errFrame is wrapped by every decoding error.
var errFrame = errors.New("malformed push frame")

// encodeHeader returns the frame bytes that precede the payload.
func encodeHeader(m *meta) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(js) > maxMeta {
		return nil, fmt.Errorf("push metadata of %d bytes exceeds %d", len(js), maxMeta)
	}
	b := make([]byte, frameHeader, frameHeader+len(js))
	copy(b, frameMagic)
	binary.BigEndian.PutUint32(b[len(frameMagic):], uint32(len(js)))
	return append(b, js...), nil
}

// decodeFrame splits a frame into its metadata and its payload, which aliases b.
func decodeFrame(op string, b []byte) (*meta, []byte, error) {
	if len(b) < frameHeader || string(b[:len(frameMagic)]) != frameMagic {
		return nil, nil, fmt.Errorf("%w: bad magic", errFrame)
	}
	n := binary.BigEndian.Uint32(b[len(frameMagic):])
	if n > maxMeta || uint64(n) > uint64(len(b)-frameHeader) {
		return nil, nil, fmt.Errorf("%w: metadata length %d", errFrame, n)
	}
	var m meta
	if err := json.Unmarshal(b[frameHeader:frameHeader+int(n)], &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errFrame, err)
	}
	payload := b[frameHeader+int(n):]
	if m.Stream.ChannelID == "" || m.Stream.StreamID == "" {
		return nil, nil, fmt.Errorf("%w: no stream", errFrame)
	}
	switch op {
	case opOpen, opClose:
		if len(payload) > 0 {
			return nil, nil, fmt.Errorf("%w: %s with a payload", errFrame, op)
		}
	case opInit:
		if m.Rendition == nil {
			return nil, nil, fmt.Errorf("%w: init without rendition", errFrame)
		}
	case opPart:
		if m.Part == nil || m.Name == "" {
			return nil, nil, fmt.Errorf("%w: part without part or rendition", errFrame)
		}
	default:
		return nil, nil, fmt.Errorf("%w: unknown operation %q", errFrame, op)
	}
	return &m, payload, nil
}

// appendBatchFrame appends one frame of a batch body.
func appendBatchFrame(dst []byte, op string, header, payload []byte) []byte {
	dst = append(dst, byte(len(op)))
	dst = append(dst, op...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(header)+len(payload)))
	dst = append(dst, header...)
	return append(dst, payload...)
}

// splitBatch splits a batch body into its operations and frames, which alias b.
func splitBatch(b []byte) (ops []string, frames [][]byte, err error) {
	for len(b) > 0 {
		n := int(b[0])
		if len(b) < 1+n+4 {
			return nil, nil, fmt.Errorf("%w: truncated batch", errFrame)
		}
		op := string(b[1 : 1+n])
		if op != opInit && op != opPart {
			return nil, nil, fmt.Errorf("%w: %q in a batch", errFrame, op)
		}
		size := binary.BigEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if uint64(size) > uint64(len(b)) {
			return nil, nil, fmt.Errorf("%w: batch frame of %d bytes", errFrame, size)
		}
		ops = append(ops, op)
		frames = append(frames, b[:size])
		b = b[size:]
	}
	if len(ops) == 0 {
		return nil, nil, fmt.Errorf("%w: empty batch", errFrame)
	}
	return ops, frames, nil
}
