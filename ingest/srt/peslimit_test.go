package srt

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

var (
	sps = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60}
	pps = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

// tsStream is an H.264 program of frames key frames of size bytes each, 40 ms apart, as an
// encoder muxes it: every video PES of unbounded length (PES_packet_length 0).
func tsStream(t *testing.T, frames, size int) (*bytes.Buffer, *mpegts.Writer, *mpegts.Track) {
	t.Helper()
	var buf bytes.Buffer
	tr := &mpegts.Track{Codec: &tscodecs.H264{}}
	w := &mpegts.Writer{W: &buf, Tracks: []*mpegts.Track{tr}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		idr := make([]byte, size)
		idr[0] = 0x65
		ts := int64(i) * 3600
		if err := w.WriteH264(tr, ts, ts, [][]byte{sps, pps, idr}); err != nil {
			t.Fatal(err)
		}
	}
	return &buf, w, tr
}

// endless appends to a stream n packets continuing its last video PES, which never ends.
func endless(stream []byte, n int) []byte {
	last := stream[len(stream)-tsPacketSize:]
	pid := uint16(last[1]&0x1f)<<8 | uint16(last[2])
	cc := last[3] & 0x0f
	for range n {
		cc = (cc + 1) & 0x0f
		pkt := make([]byte, tsPacketSize)
		pkt[0], pkt[1], pkt[2], pkt[3] = tsSyncByte, byte(pid>>8)&0x1f, byte(pid), 0x10|cc
		stream = append(stream, pkt...)
	}
	return stream
}

// readFrames reads stream through newTSReader with limit and returns the frames read, the
// bytes taken from stream and the reader's error.
func readFrames(t *testing.T, stream []byte, limit int) (frames int, read int64, err error) {
	t.Helper()
	src := &countingReader{r: bytes.NewReader(stream)}
	r := newTSReader(src, limit)
	if err := r.Initialize(); err != nil {
		return 0, src.n, err
	}
	r.OnDataH264(r.Tracks()[0], func(int64, int64, [][]byte) error { frames++; return nil })
	for {
		if err = r.Read(); err != nil {
			return frames, src.n, err
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestEndlessPESRefused: a video PES continued without end fails the stream once it passes
// the limit, having read about the limit and no more, instead of being gathered (and
// re-copied at every packet) for as long as the publisher sends.
func TestEndlessPESRefused(t *testing.T) {
	const limit = 256 << 10
	stream, _, _ := tsStream(t, 2, 1000)
	data := endless(stream.Bytes(), 20*limit/tsPacketSize)
	start := time.Now()
	frames, read, err := readFrames(t, data, limit)
	if !errors.Is(err, errUnitTooLong) {
		t.Fatalf("err %v, want errUnitTooLong", err)
	}
	if frames != 1 {
		t.Errorf("%d frames before the endless one, want 1", frames)
	}
	// The reader reads ahead by its buffer (64 KiB).
	if read > int64(stream.Len()+limit+128<<10) {
		t.Errorf("read %d bytes of %d before refusing", read, len(data))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing took %v", d)
	}
}

// TestPESLimitPassesStreams: units just under the limit, null packets and garbage to skip
// between packets reach the reader as they are.
func TestPESLimitPassesStreams(t *testing.T) {
	const limit = 256 << 10
	stream, w, tr := tsStream(t, 5, limit-4096)
	data := stream.Bytes()
	null := make([]byte, tsPacketSize)
	null[0], null[1], null[2], null[3] = tsSyncByte, 0x1f, 0xff, 0x10
	for range 2 * limit / tsPacketSize { // padding never starts a unit
		data = append(data, null...)
	}
	data = append(data, 0x00, 0x47, 0x01) // garbage the pre-demuxer skips
	stream.Reset()
	for i := range 2 {
		ts := int64(5+i) * 3600
		if err := w.WriteH264(tr, ts, ts, [][]byte{sps, pps, {0x65, byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	data = append(data, stream.Bytes()...)
	frames, _, err := readFrames(t, data, limit)
	want, _, _ := readFrames(t, data, 1<<30)
	if err != io.EOF || frames != want || frames < 6 {
		t.Fatalf("%d frames, err %v; want %d (at least 6) and EOF", frames, err, want)
	}
}

// TestPESLimitDefault: at maxPES the limit holds without the reader on top (whose copying a
// unit that long makes slow): 3 × maxPES of one endless unit are refused past maxPES.
func TestPESLimitDefault(t *testing.T) {
	stream, _, _ := tsStream(t, 1, 1000)
	data := endless(stream.Bytes(), 3*maxPES/tsPacketSize)
	src := &countingReader{r: bytes.NewReader(data)}
	_, err := io.Copy(io.Discard, iotest.OneByteReader(newPESLimit(src, maxPES)))
	// maxPES of payload, in packets of 184 bytes of it.
	if !errors.Is(err, errUnitTooLong) || src.n > int64(stream.Len()+(maxPES/184+1)*tsPacketSize) {
		t.Fatalf("err %v after %d bytes", err, src.n)
	}
}

// FuzzPESLimit: pesLimit passes any input through unchanged until it refuses it, however the
// reads split it.
func FuzzPESLimit(f *testing.F) {
	stream, _, _ := tsStream(&testing.T{}, 2, 500)
	f.Add(endless(stream.Bytes(), 20), 1000)
	f.Add([]byte{0x47, 0x1f, 0xff, 0x10, 0x47}, 3)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		var out bytes.Buffer
		_, err := io.Copy(&out, iotest.HalfReader(newPESLimit(bytes.NewReader(data), max(1, limit%(1<<16)))))
		if err != nil && !errors.Is(err, errUnitTooLong) {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, out.Bytes()) || (err == nil && out.Len() != len(data)) {
			t.Fatalf("passed %d bytes of %d, not the input's prefix (err %v)", out.Len(), len(data), err)
		}
	})
}
