package remux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/asticode/go-astits"

	"glasscast/metadata"
)

const packetSize = 188

// ID3 descriptors of Apple's "Timed Metadata for HTTP Live Streaming" (ISO/IEC 13818-1
// 2.6.58-2.6.61): metadata_pointer_descriptor for the program, metadata_descriptor for the
// stream, both naming the format 'ID3 '.
var (
	metadataPointerDescriptor = []byte{0x25, 15, 0xFF, 0xFF, 'I', 'D', '3', ' ', 0xFF, 'I', 'D', '3', ' ', 0x00,
		0x1F /* no locator record, no carriage flags, reserved */, 0x00, 0x01 /* program_number, patched */}
	metadataDescriptor = []byte{0x26, 13, 0xFF, 0xFF, 'I', 'D', '3', ' ', 0xFF, 'I', 'D', '3', ' ', 0x00,
		0x0F /* no decoder config, no DSM-CC, reserved */}
)

// packets sits between mediacommon's MPEG-TS writer and the file. mediacommon has no ID3
// stream type, so this layer adds one: it rewrites the PMT to declare the ID3 stream and
// inserts the ID3 PES packets, which a second astits muxer packetizes, between whole packets
// of the writer's output.
type packets struct {
	w       io.Writer
	n       int64 // bytes written to w
	pend    []byte
	pmtPID  int // -1 until the PAT names it
	lastPMT []byte
	newPMT  []byte
	id3     *astits.Muxer
	id3Buf  bytes.Buffer
	err     error
}

func newPackets(w io.Writer) *packets {
	p := &packets{w: w, pmtPID: -1}
	p.id3 = astits.NewMuxer(context.Background(), &p.id3Buf)
	_ = p.id3.AddElementaryStream(astits.PMTElementaryStream{ElementaryPID: pidID3, StreamType: astits.StreamTypeMetadata})
	p.id3.SetPCRPID(pidID3)
	return p
}

// Write takes the writer's output in any slicing and passes it on packet by packet.
func (p *packets) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	p.pend = append(p.pend, b...)
	i := 0
	for ; len(p.pend)-i >= packetSize; i += packetSize {
		if err := p.packet(p.pend[i : i+packetSize]); err != nil {
			p.err = err
			return 0, err
		}
	}
	p.pend = append(p.pend[:0], p.pend[i:]...)
	return len(b), nil
}

func (p *packets) emit(b []byte) error {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if err != nil {
		return fmt.Errorf("write ts: %w", err)
	}
	return nil
}

func (p *packets) packet(pkt []byte) error {
	if pkt[0] != 0x47 {
		return errors.New("ts writer lost packet sync")
	}
	pid := int(pkt[1]&0x1F)<<8 | int(pkt[2])
	pusi := pkt[1]&0x40 != 0
	switch {
	case pid == 0 && pusi:
		if sec := section(pkt); len(sec) >= 12 {
			p.pmtPID = int(sec[10]&0x1F)<<8 | int(sec[11])
		}
	case pid == p.pmtPID && pusi:
		out, err := p.rewritePMT(pkt)
		if err != nil {
			return err
		}
		return p.emit(out)
	}
	return p.emit(pkt)
}

// section returns the PSI section a packet starts, or nil.
func section(pkt []byte) []byte {
	payload := pkt[4:]
	if pkt[3]&0x20 != 0 { // adaptation field
		if len(payload) < 1 || int(payload[0])+1 > len(payload) {
			return nil
		}
		payload = payload[1+int(payload[0]):]
	}
	if len(payload) < 1 || int(payload[0])+1 > len(payload) {
		return nil
	}
	return payload[1+int(payload[0]):]
}

// rewritePMT adds the ID3 stream to a PMT packet. The writer repeats one PMT, so the result is
// computed once and only the continuity counter changes.
func (p *packets) rewritePMT(pkt []byte) ([]byte, error) {
	if p.newPMT != nil && bytes.Equal(p.lastPMT[4:], pkt[4:]) {
		out := bytes.Clone(p.newPMT)
		out[3] = out[3]&0xF0 | pkt[3]&0x0F
		return out, nil
	}
	sec := section(pkt)
	if len(sec) < 16 || sec[0] != 0x02 {
		return nil, errors.New("ts writer's PMT is not a PMT")
	}
	total := 3 + (int(sec[1]&0x0F)<<8 | int(sec[2]))
	if total > len(sec) || total < 16 {
		return nil, errors.New("ts writer's PMT spans packets")
	}
	infoLen := int(sec[10]&0x0F)<<8 | int(sec[11])
	if 12+infoLen > total-4 {
		return nil, errors.New("malformed PMT from ts writer")
	}
	ptr := bytes.Clone(metadataPointerDescriptor)
	ptr[len(ptr)-2], ptr[len(ptr)-1] = sec[3], sec[4] // program_number
	es := []byte{byte(astits.StreamTypeMetadata), 0xE0 | pidID3>>8, pidID3 & 0xFF,
		0xF0, byte(len(metadataDescriptor))}
	es = append(es, metadataDescriptor...)

	ns := make([]byte, 0, total+len(ptr)+len(es))
	ns = append(ns, sec[:12]...)
	ns = append(ns, sec[12:12+infoLen]...)
	ns = append(ns, ptr...)
	ns = append(ns, sec[12+infoLen:total-4]...)
	ns = append(ns, es...)
	secLen := len(ns) + 4 - 3
	ns[1] = ns[1]&0xF0 | byte(secLen>>8)
	ns[2] = byte(secLen)
	info := infoLen + len(ptr)
	ns[10] = ns[10]&0xF0 | byte(info>>8)
	ns[11] = byte(info)
	crc := metadata.CRC32MPEG2(ns)
	ns = append(ns, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
	if 5+len(ns) > packetSize {
		return nil, errors.New("PMT with the ID3 stream does not fit in one packet")
	}
	out := make([]byte, packetSize)
	copy(out, pkt[:4])
	out[3] = 0x10 | pkt[3]&0x0F // payload only, same continuity counter
	out[4] = 0                  // pointer_field
	n := copy(out[5:], ns)
	for i := 5 + n; i < packetSize; i++ {
		out[i] = 0xFF
	}
	p.lastPMT, p.newPMT = bytes.Clone(pkt), out
	return out, nil
}

// writeID3 inserts one ID3 tag as a PES packet with the given PTS.
func (p *packets) writeID3(pts int64, tag []byte) error {
	if len(p.pend) != 0 {
		return errors.New("ID3 between partial packets")
	}
	p.id3Buf.Reset()
	_, err := p.id3.WriteData(&astits.MuxerData{
		PID: pidID3,
		PES: &astits.PESData{
			Header: &astits.PESHeader{
				StreamID: 0xBD, // private_stream_1
				OptionalHeader: &astits.PESOptionalHeader{
					MarkerBits:             2,
					DataAlignmentIndicator: true,
					PTSDTSIndicator:        astits.PTSDTSIndicatorOnlyPTS,
					PTS:                    &astits.ClockReference{Base: wrap(pts)},
				},
			},
			Data: tag,
		},
	})
	if err != nil {
		return fmt.Errorf("id3 pes: %w", err)
	}
	b := p.id3Buf.Bytes()
	for i := 0; i+packetSize <= len(b); i += packetSize {
		pkt := b[i : i+packetSize]
		// The side muxer also writes its own tables; only the ID3 stream's packets are kept.
		if int(pkt[1]&0x1F)<<8|int(pkt[2]) == pidID3 {
			if err := p.emit(pkt); err != nil {
				return err
			}
		}
	}
	return nil
}
