// Package metadata encodes timed metadata the way players read it from CMAF media: an ID3v2.4
// tag holding one TXXX frame, carried in a version 1 (AOM) and a version 0 (Twitch) emsg box.
// It also reads those boxes back out of parts and segments, for tests and end-to-end checks.
package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	id3HeaderSize = 10
	id3FrameSize  = 10 // frame header: id, size, flags
	// maxSynchsafe is the largest size a 4-byte synchsafe integer can hold (28 bits).
	maxSynchsafe = 1<<28 - 1

	// TXXX text encodings (ID3v2.4 §4).
	encLatin1  = 0
	encUTF16   = 1 // with BOM
	encUTF16BE = 2
	encUTF8    = 3
)

// ErrNoText is returned by ID3Text when a well-formed tag holds no TXXX frame.
var ErrNoText = errors.New("id3: no TXXX frame")

// ID3 returns an ID3v2.4 tag holding one TXXX frame with an empty description and text as
// its value, UTF-8 encoded. IVS's player surfaces that value as TextMetadataCue.text and hls.js
// as the frame's data, so the PutMetadata payload round-trips unchanged.
func ID3(text string) ([]byte, error) {
	// Frame payload: encoding byte, empty description with its terminator, then the value.
	// The value carries no terminator: ID3v2.4 does not require one and readers that find
	// one show it as a stray character.
	frameLen := 2 + len(text)
	tagLen := id3FrameSize + frameLen
	if tagLen > maxSynchsafe {
		return nil, fmt.Errorf("id3: text of %d bytes is too long for a tag", len(text))
	}
	b := make([]byte, 0, id3HeaderSize+tagLen)
	b = append(b, 'I', 'D', '3', 4, 0, 0) // v2.4.0, no flags
	b = appendSynchsafe(b, uint32(tagLen))
	b = append(b, 'T', 'X', 'X', 'X')
	b = appendSynchsafe(b, uint32(frameLen)) // v2.4 frame sizes are synchsafe too (v2.3's are not)
	b = append(b, 0, 0, encUTF8, 0)
	b = append(b, text...)
	return b, nil
}

// appendSynchsafe appends v as four bytes of seven bits each, so that no size byte can look like
// the start of an MPEG sync word (0xFF).
func appendSynchsafe(b []byte, v uint32) []byte {
	return append(b, byte(v>>21&0x7f), byte(v>>14&0x7f), byte(v>>7&0x7f), byte(v&0x7f))
}

func synchsafe(b []byte) (uint32, bool) {
	if (b[0]|b[1]|b[2]|b[3])&0x80 != 0 {
		return 0, false
	}
	return uint32(b[0])<<21 | uint32(b[1])<<14 | uint32(b[2])<<7 | uint32(b[3]), true
}

// ID3Text returns the value of the first TXXX frame in an ID3v2.3 or v2.4 tag. It accepts
// what other encoders write (any of the four text encodings, extended headers, per-frame
// unsynchronisation) because tests also read tags that did not come from ID3.
func ID3Text(tag []byte) (string, error) {
	if len(tag) < id3HeaderSize || string(tag[:3]) != "ID3" {
		return "", errors.New("id3: no tag header")
	}
	major, flags := tag[3], tag[5]
	if major != 3 && major != 4 {
		return "", fmt.Errorf("id3: unsupported version 2.%d", major)
	}
	size, ok := synchsafe(tag[6:10])
	if !ok {
		return "", errors.New("id3: tag size is not synchsafe")
	}
	if int(size) > len(tag)-id3HeaderSize {
		return "", fmt.Errorf("id3: tag of %d bytes truncated to %d", size, len(tag)-id3HeaderSize)
	}
	body := tag[id3HeaderSize : id3HeaderSize+int(size)]
	if flags&0x80 != 0 && major == 3 {
		// v2.3 unsynchronises the whole tag; v2.4 does it per frame (handled below).
		body = resync(body)
	}
	if flags&0x40 != 0 {
		var err error
		if body, err = skipExtendedHeader(body, major); err != nil {
			return "", err
		}
	}
	for len(body) >= id3FrameSize && body[0] != 0 { // a zero byte starts the padding
		id := string(body[:4])
		var n uint32
		if major == 4 {
			if n, ok = synchsafe(body[4:8]); !ok {
				return "", fmt.Errorf("id3: frame %q size is not synchsafe", id)
			}
		} else {
			n = binary.BigEndian.Uint32(body[4:8])
		}
		frameFlags := binary.BigEndian.Uint16(body[8:10])
		body = body[id3FrameSize:]
		if uint64(n) > uint64(len(body)) {
			return "", fmt.Errorf("id3: frame %q of %d bytes overruns the tag", id, n)
		}
		data := body[:n]
		body = body[n:]
		if id != "TXXX" {
			continue
		}
		if major == 4 {
			if frameFlags&0x000c != 0 { // compressed or encrypted: not ours to read
				continue
			}
			if frameFlags&0x0002 != 0 {
				data = resync(data)
			}
			if frameFlags&0x0001 != 0 { // data length indicator precedes the data
				if len(data) < 4 {
					return "", errors.New("id3: TXXX data length indicator truncated")
				}
				data = data[4:]
			}
		}
		return txxxValue(data)
	}
	return "", ErrNoText
}

func skipExtendedHeader(body []byte, major byte) ([]byte, error) {
	if len(body) < 4 {
		return nil, errors.New("id3: extended header truncated")
	}
	var n uint64
	if major == 4 {
		v, ok := synchsafe(body[:4])
		if !ok {
			return nil, errors.New("id3: extended header size is not synchsafe")
		}
		n = uint64(v) // v2.4 counts the size field itself
	} else {
		n = uint64(binary.BigEndian.Uint32(body[:4])) + 4
	}
	if n < 4 || n > uint64(len(body)) {
		return nil, fmt.Errorf("id3: extended header of %d bytes overruns the tag", n)
	}
	return body[n:], nil
}

// resync undoes unsynchronisation: every 0xFF 0x00 pair was a lone 0xFF.
func resync(b []byte) []byte {
	if !bytes.Contains(b, []byte{0xff, 0x00}) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0xff && i+1 < len(b) && b[i+1] == 0 {
			i++
		}
	}
	return out
}

// txxxValue decodes a TXXX frame body: encoding byte, description, terminator, value.
func txxxValue(data []byte) (string, error) {
	if len(data) < 1 {
		return "", errors.New("id3: empty TXXX frame")
	}
	enc, rest := data[0], data[1:]
	switch enc {
	case encLatin1, encUTF8:
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return "", errors.New("id3: TXXX description is not terminated")
		}
		value := bytes.TrimRight(rest[i+1:], "\x00")
		if enc == encUTF8 {
			return strings.ToValidUTF8(string(value), string(utf8.RuneError)), nil
		}
		var sb strings.Builder
		for _, c := range value {
			sb.WriteRune(rune(c)) // ISO-8859-1 maps one to one onto the first 256 code points
		}
		return sb.String(), nil
	case encUTF16, encUTF16BE:
		i := 0
		for ; i+1 < len(rest); i += 2 {
			if rest[i] == 0 && rest[i+1] == 0 {
				break
			}
		}
		if i+1 >= len(rest) {
			return "", errors.New("id3: TXXX description is not terminated")
		}
		return decodeUTF16(rest[i+2:], enc == encUTF16BE), nil
	default:
		return "", fmt.Errorf("id3: unknown text encoding %d", enc)
	}
}

func decodeUTF16(b []byte, bigEndian bool) string {
	if len(b) >= 2 {
		switch {
		case b[0] == 0xfe && b[1] == 0xff:
			bigEndian, b = true, b[2:]
		case b[0] == 0xff && b[1] == 0xfe:
			bigEndian, b = false, b[2:]
		}
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if bigEndian {
			u = append(u, binary.BigEndian.Uint16(b[i:]))
		} else {
			u = append(u, binary.LittleEndian.Uint16(b[i:]))
		}
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}
