package srt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

const (
	// maxPES bounds one payload unit (a PES, a PSI section) of MPEG-TS: twice a whole 2 s GOP
	// at 8.5 Mbps (IVS's input limit), above any key frame a 4K encoder sends at streaming
	// rates. Below it astits's copying stays quadratic: a unit of maxPES costs seconds of CPU.
	maxPES       = 4 << 20
	tsPacketSize = 188
	tsSyncByte   = 0x47
	tsNullPID    = 0x1fff
)

// errUnitTooLong ends a stream whose PES (or PSI section) grows past the limit.
var errUnitTooLong = errors.New("payload unit (PES) too long")

// pesLimit ends the stream when one PID carries more than limit bytes of payload without
// starting a new payload unit.
//
// astits, under mediacommon's mpegts.Reader, gathers a PES until its length is reached or the
// next payload unit of its PID starts, and copies all it has gathered at every packet to check
// whether it is complete. Video PES declare no length (PES_packet_length 0), so a publisher
// that never starts another one made it hold, and re-copy, everything that came after: memory
// without bound and time quadratic in it. Neither library offers a limit, so pesLimit follows
// the 188-byte packets the reader will see, cut as its pre-demuxer cuts them (a packet that
// does not start with the sync byte is shifted to the first one in it), and reads only their
// PID, flags and payload length.
type pesLimit struct {
	r     io.Reader
	limit int
	pkt   [tsPacketSize]byte
	n     int            // bytes of pkt filled
	run   map[uint16]int // payload bytes of each PID's current unit
	err   error          // sticky: the reader above may read on after an error
}

func newPESLimit(r io.Reader, limit int) *pesLimit {
	return &pesLimit{r: r, limit: limit, run: map[uint16]int{}}
}

// newTSReader reads MPEG-TS from r with no payload unit longer than maxUnit.
func newTSReader(r io.Reader, maxUnit int) *mpegts.Reader {
	return &mpegts.Reader{R: bufio.NewReaderSize(newPESLimit(r, maxUnit), 64<<10)}
}

func (l *pesLimit) Read(b []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(b)
	for rest := b[:n]; len(rest) > 0; {
		c := copy(l.pkt[l.n:], rest)
		l.n += c
		rest = rest[c:]
		if l.n < tsPacketSize {
			continue
		}
		if skip := bytes.IndexByte(l.pkt[:], tsSyncByte); skip != 0 {
			if skip < 0 {
				skip = tsPacketSize
			}
			l.n = copy(l.pkt[:], l.pkt[skip:])
			continue
		}
		l.n = 0
		if l.err = l.packet(); l.err != nil {
			return 0, l.err
		}
	}
	return n, err
}

// packet counts the payload of the packet in l.pkt as astits will gather it.
func (l *pesLimit) packet() error {
	p := l.pkt[:]
	pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
	errorIndicator, unitStart := p[1]&0x80 != 0, p[1]&0x40 != 0
	adaptation, payload := p[3]&0x20 != 0, p[3]&0x10 != 0
	if pid == tsNullPID || errorIndicator || !payload { // astits drops these
		return nil
	}
	size := tsPacketSize - 4
	if adaptation {
		size = max(0, size-1-int(p[4]))
	}
	if unitStart {
		l.run[pid] = 0
	}
	l.run[pid] += size
	if l.run[pid] > l.limit {
		return fmt.Errorf("MPEG-TS PID %d: %w: more than %d bytes and the next has not started", pid, errUnitTooLong, l.limit)
	}
	return nil
}
