package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SpliceInsert is an SCTE-35 splice_insert() command (ANSI/SCTE 35, section 9.7.3) in the
// form HLS carries it: a whole splice_info_section as the hex value of EXT-X-DATERANGE's
// SCTE35-OUT or SCTE35-IN attribute. No maintained Go SCTE-35 library resolves from this
// build's module proxy, and one command with one descriptor is a page of bit packing.
type SpliceInsert struct {
	EventID uint32
	// OutOfNetwork is true at the start of a break (SCTE35-OUT), false at its end (SCTE35-IN).
	OutOfNetwork bool
	// PTS is the splice point in 90 kHz ticks (33 bits); nil splices immediately.
	PTS *uint64
	// BreakDuration, in 90 kHz ticks, with auto_return set; nil omits break_duration().
	BreakDuration   *uint64
	UniqueProgramID uint16
	AvailNum        uint8
	AvailsExpected  uint8
	// AvailID, when set, adds an avail_descriptor (tag 0, identifier "CUEI") carrying it.
	AvailID *uint32
}

const (
	spliceInsertType = 0x05
	ticksMask        = 1<<33 - 1
)

// Encode returns the splice_info_section that carries s.
func (s SpliceInsert) Encode() []byte {
	cmd := binary.BigEndian.AppendUint32(nil, s.EventID)
	cmd = append(cmd, 0x7f) // splice_event_cancel_indicator 0, reserved
	flags := byte(0x0f)     // event_id_compliance_flag 1 and reserved bits
	if s.OutOfNetwork {
		flags |= 0x80
	}
	flags |= 0x40 // program_splice_flag: the whole program splices at once
	if s.BreakDuration != nil {
		flags |= 0x20
	}
	if s.PTS == nil {
		flags |= 0x10
	}
	cmd = append(cmd, flags)
	if s.PTS != nil {
		cmd = appendTicks(cmd, 0xfe, *s.PTS) // time_specified_flag 1
	}
	if s.BreakDuration != nil {
		cmd = appendTicks(cmd, 0xfe, *s.BreakDuration) // auto_return 1
	}
	cmd = binary.BigEndian.AppendUint16(cmd, s.UniqueProgramID)
	cmd = append(cmd, s.AvailNum, s.AvailsExpected)

	var desc []byte
	if s.AvailID != nil {
		desc = append(desc, 0x00, 8, 'C', 'U', 'E', 'I')
		desc = binary.BigEndian.AppendUint32(desc, *s.AvailID)
	}
	// table_id .. tier, then the command, the descriptor loop and the CRC.
	sectionLen := 11 + len(cmd) + 2 + len(desc) + 4
	b := []byte{0xfc, 0x30 | byte(sectionLen>>8&0x0f), byte(sectionLen), 0}
	b = append(b, 0, 0, 0, 0, 0) // not encrypted, pts_adjustment 0
	b = append(b, 0xff)          // cw_index, unused without encryption
	b = append(b, 0xff, 0xf0|byte(len(cmd)>>8&0x0f), byte(len(cmd)), spliceInsertType)
	b = append(b, cmd...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(desc)))
	b = append(b, desc...)
	return binary.BigEndian.AppendUint32(b, CRC32MPEG2(b))
}

// appendTicks writes a flag byte's top bits and a 33-bit tick count in five bytes.
func appendTicks(b []byte, top byte, ticks uint64) []byte {
	ticks &= ticksMask
	return append(b, top|byte(ticks>>32), byte(ticks>>24), byte(ticks>>16), byte(ticks>>8), byte(ticks))
}

// ParseSpliceInsert reads a splice_info_section holding a splice_insert(), checking its CRC.
// It is the inverse of Encode for the fields SpliceInsert has.
func ParseSpliceInsert(b []byte) (SpliceInsert, error) {
	var s SpliceInsert
	if len(b) < 17 || b[0] != 0xfc {
		return s, errors.New("scte35: not a splice_info_section")
	}
	n := int(b[1]&0x0f)<<8 | int(b[2])
	if 3+n != len(b) {
		return s, fmt.Errorf("scte35: section_length %d for %d bytes", n, len(b))
	}
	if CRC32MPEG2(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return s, errors.New("scte35: bad CRC_32")
	}
	if b[4]&0x80 != 0 {
		return s, errors.New("scte35: encrypted section")
	}
	cmdLen := int(b[11]&0x0f)<<8 | int(b[12])
	if b[13] != spliceInsertType {
		return s, fmt.Errorf("scte35: splice_command_type %d, want splice_insert", b[13])
	}
	cmd := b[14:]
	if cmdLen > len(cmd) || cmdLen < 5 {
		return s, errors.New("scte35: truncated splice_insert")
	}
	cmd = cmd[:cmdLen]
	s.EventID = binary.BigEndian.Uint32(cmd)
	if cmd[4]&0x80 != 0 {
		return s, errors.New("scte35: cancelled splice event")
	}
	if len(cmd) < 6 {
		return s, errors.New("scte35: truncated splice_insert")
	}
	flags := cmd[5]
	if flags&0x40 == 0 {
		return s, errors.New("scte35: component splice mode is not supported")
	}
	s.OutOfNetwork = flags&0x80 != 0
	rest := cmd[6:]
	ticks := func() (uint64, bool) {
		if len(rest) < 5 {
			return 0, false
		}
		t := uint64(rest[0]&1)<<32 | uint64(binary.BigEndian.Uint32(rest[1:]))
		rest = rest[5:]
		return t, true
	}
	if flags&0x10 == 0 {
		if len(rest) < 1 {
			return s, errors.New("scte35: truncated splice_time")
		}
		if rest[0]&0x80 != 0 {
			t, ok := ticks()
			if !ok {
				return s, errors.New("scte35: truncated splice_time")
			}
			s.PTS = &t
		} else {
			rest = rest[1:]
		}
	}
	if flags&0x20 != 0 {
		t, ok := ticks()
		if !ok {
			return s, errors.New("scte35: truncated break_duration")
		}
		s.BreakDuration = &t
	}
	if len(rest) < 4 {
		return s, errors.New("scte35: truncated splice_insert")
	}
	s.UniqueProgramID = binary.BigEndian.Uint16(rest)
	s.AvailNum, s.AvailsExpected = rest[2], rest[3]
	loop := b[14+cmdLen:]
	if len(loop) < 6 {
		return s, errors.New("scte35: truncated descriptor loop")
	}
	dl := int(binary.BigEndian.Uint16(loop))
	if 2+dl+4 != len(loop) {
		return s, errors.New("scte35: descriptor_loop_length does not match the section")
	}
	for d := loop[2 : 2+dl]; len(d) >= 2; {
		tag, l := d[0], int(d[1])
		if 2+l > len(d) {
			return s, errors.New("scte35: truncated descriptor")
		}
		if tag == 0 && l == 8 && string(d[2:6]) == "CUEI" {
			id := binary.BigEndian.Uint32(d[6:10])
			s.AvailID = &id
		}
		d = d[2+l:]
	}
	return s, nil
}

// CRC32MPEG2 is the CRC_32 of MPEG-2 sections (SCTE-35 and PSI tables alike) (polynomial 0x04C11DB7, not reflected, initial
// value all ones, no final XOR); hash/crc32 only computes the reflected variants.
func CRC32MPEG2(b []byte) uint32 {
	crc := uint32(0xffffffff)
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
