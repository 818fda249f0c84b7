package rtmp

import (
	"errors"
	"fmt"
)

// chunkGuard follows the bytes a client sends before its stream key is accepted and finds the
// first chunk whose body could not arrive within the pre-authorization budget.
//
// preAuthBudget bounds the bytes read, not the memory: gortmplib allocates a chunk's body, up
// to the chunk size, as soon as it has read the chunk's header. A client that sets a chunk
// size of 10 MiB and announces a 16 MB message costs 10 MB for 28 bytes, per pending socket.
// The library offers no limit, so the guard parses what the library's rawmessage.Reader does
// to cut the stream into chunks, and nothing else: the handshake's length, each chunk
// header, each chunk stream's message in progress, and the two control messages that change
// the cutting (Set Chunk Size, Abort). Where the library would refuse the stream (an
// extended chunk stream ID, a chunk out of sequence, a bad Set Chunk Size), the guard turns
// off: the library stops reading there. Reading a chunk that ends past the budget can only
// fail, so stopping before its header completes costs a real client nothing.
type chunkGuard struct {
	limit     int // bytes the client may send before publishing
	pos       int // bytes scanned
	skip      int // bytes left of the handshake or of the current chunk's body
	chunkSize uint32
	streams   [64]chunkStream
	cur       *chunkStream // the stream of the chunk being read
	body      uint32       // the length of its body
	hdr       []byte       // the chunk header read so far
	off       bool
}

// chunkStream is what the library keeps of one chunk stream between chunks.
type chunkStream struct {
	started  bool // a type 0 chunk gave it a timestamp, which later types add to
	typ      uint8
	bodyLen  uint32
	recv     uint32
	extended bool   // type 3 chunks carry an extended timestamp
	ctl      []byte // the body of a control message, as it arrives
}

const (
	// handshakeLen is C0, C1 and C2 of the plain RTMP handshake.
	handshakeLen = 1 + 1536 + 1536
	// maxMessageSize is the library's limit on the chunk size and on a message's length.
	maxMessageSize = 10 << 20
	// RTMP control message types that change how the stream is cut into chunks.
	msgSetChunkSize = 1
	msgAbort        = 2
)

// errRTMPE refuses encrypted RTMP, whose chunks the guard cannot read; RTMPS replaces it.
var errRTMPE = errors.New("rtmpe (encrypted rtmp) is not supported: use rtmps")

func newChunkGuard(limit int) *chunkGuard {
	return &chunkGuard{limit: limit, skip: handshakeLen, chunkSize: 128}
}

// scan follows b, the next bytes from the client, and returns how many of them the library
// may read: fewer than len(b) when b completes the header of a chunk that ends past the
// limit, in which case the header's last byte is not among them.
func (g *chunkGuard) scan(b []byte) (int, error) {
	for i := 0; i < len(b) && !g.off; {
		if g.pos == 0 && b[i] == 6 {
			return 0, errRTMPE
		}
		if g.skip > 0 {
			n := min(g.skip, len(b)-i)
			if g.cur != nil && g.cur.isControl() {
				g.cur.ctl = append(g.cur.ctl, b[i:i+n]...)
			}
			g.skip -= n
			g.pos += n
			i += n
			if g.skip == 0 && g.cur != nil {
				g.chunkRead()
			}
			continue
		}
		g.hdr = append(g.hdr, b[i])
		g.pos++
		i++
		if g.header() {
			if g.pos+int(g.body) > g.limit {
				return i - 1, nil
			}
			g.hdr = g.hdr[:0]
			g.skip = int(g.body)
			if g.body == 0 {
				g.chunkRead()
			}
		}
	}
	return len(b), nil
}

// header reads the chunk header in g.hdr as rawmessage.Reader does and, once it is complete,
// makes its stream current and sets the length of its body.
func (g *chunkGuard) header() bool {
	h := g.hdr
	typ, id := h[0]>>6, h[0]&0x3f
	s := &g.streams[id]
	// What the library refuses before reading further: an extended chunk stream ID, a new
	// message in the middle of one, a timestamp delta with no timestamp to add it to.
	if id < 2 || (typ < 3 && s.recv != 0) || (typ > 0 && !s.started) {
		g.off = true
		return false
	}
	size := [4]int{12, 8, 4, 1}[typ]
	if len(h) < size {
		return false
	}
	extended := s.extended
	if typ < 3 && h[1] == 0xff && h[2] == 0xff && h[3] == 0xff {
		if len(h) < size+4 {
			return false
		}
		// The library keeps the 32-bit value and asks it again whether it is extended.
		extended = uint32(h[size])<<24|uint32(h[size+1])<<16|uint32(h[size+2])<<8|uint32(h[size+3]) >= 0xffffff
	} else if typ < 3 {
		extended = false
	} else if extended && len(h) < size+4 {
		return false
	}
	if typ < 2 {
		s.bodyLen = uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		s.typ = h[7]
	}
	s.started = s.started || typ == 0
	s.extended = extended
	g.cur, g.body = s, min(s.bodyLen-s.recv, g.chunkSize)
	return true
}

// chunkRead ends the current chunk's body: a message is complete with its last chunk, and the
// control messages that change the cutting take effect at once, as in the library.
func (g *chunkGuard) chunkRead() {
	s := g.cur
	s.recv += g.body
	if s.bodyLen > maxMessageSize {
		g.off = true // the library refuses the message once it has read this chunk
		return
	}
	if s.recv < s.bodyLen {
		return
	}
	s.recv = 0
	if s.typ == msgSetChunkSize || s.typ == msgAbort {
		g.control(s)
	}
}

// isControl reports whether the guard keeps the body of the stream's message: a control message
// of the 4 bytes the library accepts.
func (s *chunkStream) isControl() bool {
	return (s.typ == msgSetChunkSize || s.typ == msgAbort) && s.bodyLen == 4
}

func (g *chunkGuard) control(s *chunkStream) {
	body := s.ctl
	s.ctl = s.ctl[:0]
	if len(body) != 4 {
		g.off = true // the library refuses a control message of another length
		return
	}
	v := uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
	switch s.typ {
	case msgSetChunkSize:
		if v > maxMessageSize {
			g.off = true
			return
		}
		g.chunkSize = v
	case msgAbort:
		if v >= 2 && v <= 63 && g.streams[v].recv != 0 {
			g.streams[v].bodyLen, g.streams[v].recv = 0, 0
			g.streams[v].ctl = g.streams[v].ctl[:0]
		}
	}
}

// errChunkPastBudget is returned when the library asks for the header of a chunk it could not
// finish reading before the budget runs out.
func errChunkPastBudget(limit int) error {
	return fmt.Errorf("client announced a chunk that ends past the %d bytes it may send before publishing", limit)
}
