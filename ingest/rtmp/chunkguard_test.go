package rtmp

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"
)

// clientStream is a plain handshake followed by msgs as gortmplib's writer cuts them into
// chunks, the chunk size changing as the Set Chunk Size messages among them say.
func clientStream(t *testing.T, msgs []message.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(3)
	buf.Write(make([]byte, 2*1536))
	w := message.NewWriter(&buf, bytecounter.NewWriter(&buf), false)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestChunkGuardFollowsLibrary: over a stream gortmplib's own writer produced (chunk sizes
// changing from 1 byte to 1 MiB, messages of up to 200 KB on several chunk streams, all four
// chunk header types, extended timestamps), read in pieces of random sizes, the guard passes
// every byte and ends where the stream ends: between chunks, no message in progress, with the
// last chunk size set. A guard out of step with the library would stop or switch off.
func TestChunkGuardFollowsLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs []message.Message
	sizes := []uint32{1, 3, 128, 4096, 60000, 1 << 20}
	var last uint32
	for i := range 300 {
		if i%20 == 0 {
			last = sizes[rng.IntN(len(sizes))]
			msgs = append(msgs, &message.SetChunkSize{Value: last})
		}
		// Jumps of 5 h, past 0xFFFFFF ms, forward (a delta) and back (a new timestamp) make
		// extended timestamps in type 0, 1 and 2 headers and the type 3 chunks after them.
		dts := time.Duration(i) * time.Millisecond
		if i%3 == 0 {
			dts += 5 * time.Hour
		}
		switch rng.IntN(3) {
		case 0:
			msgs = append(msgs, &message.CommandAMF0{ChunkStreamID: 3, Name: "releaseStream", CommandID: i, Arguments: []any{nil, "key"}})
		case 1:
			au := make([]byte, rng.IntN(200_000))
			msgs = append(msgs, &message.Video{ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 1, DTS: dts,
				Codec: message.CodecH264, Type: message.VideoTypeAU, AU: au})
		case 2:
			msgs = append(msgs, &message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 1,
				Payload: amf0.Data{"onTextData", amf0.Object{{Key: "text", Value: string(make([]byte, rng.IntN(300)))}}}})
		}
	}
	stream := clientStream(t, msgs)

	// The input is what the library reads: every message, in order.
	r := message.NewReader(bytes.NewReader(stream[handshakeLen:]), bytecounter.NewReader(nil), nil)
	for i := range msgs {
		if _, err := r.Read(); err != nil {
			t.Fatalf("library reading message %d: %v", i, err)
		}
	}

	g := newChunkGuard(len(stream))
	for rest := stream; len(rest) > 0; {
		n := min(1+rng.IntN(5000), len(rest))
		pass, err := g.scan(rest[:n])
		if err != nil || pass != n {
			t.Fatalf("at byte %d: passed %d of %d, err %v", len(stream)-len(rest), pass, n, err)
		}
		rest = rest[n:]
	}
	if g.off || g.skip != 0 || len(g.hdr) != 0 || g.chunkSize != last {
		t.Fatalf("guard off %v, skip %d, header %d bytes, chunk size %d (want %d)", g.off, g.skip, len(g.hdr), g.chunkSize, last)
	}
	for id, s := range g.streams {
		if s.recv != 0 {
			t.Fatalf("chunk stream %d: %d bytes of a message in progress", id, s.recv)
		}
	}
}

// TestChunkGuardStops: the guard holds back the last byte of a header whose chunk could not
// arrive within the limit, and lets through chunks that can, however long their message.
func TestChunkGuardStops(t *testing.T) {
	const limit = 64 << 10
	big := func(chunkSize uint32, bodyLen int) []byte {
		s := clientStream(t, []message.Message{&message.SetChunkSize{Value: chunkSize}})
		// A type 0 header on chunk stream 3: an AMF0 command of bodyLen bytes, none sent.
		return append(s, 0x03, 0, 0, 0, byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen), 20, 0, 0, 0, 0)
	}
	cases := []struct {
		name  string
		in    []byte
		stops bool
	}{
		{"10 MiB chunks, 16 MB message", big(10<<20, 0xffffff), true},
		{"10 MiB chunks, message within the limit", big(10<<20, 32<<10), false},
		{"128-byte chunks, 16 MB message", big(128, 0xffffff), false},
		{"64 KiB chunks, message ending past the limit", big(64<<10, 64<<10), true},
	}
	for _, tc := range cases {
		g := newChunkGuard(limit)
		pass, err := g.scan(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if stops := pass < len(tc.in); stops != tc.stops || (stops && pass != len(tc.in)-1) {
			t.Errorf("%s: passed %d of %d bytes", tc.name, pass, len(tc.in))
		}
	}
	if _, err := newChunkGuard(limit).scan([]byte{6}); !errors.Is(err, errRTMPE) {
		t.Errorf("rtmpe: err %v", err)
	}
}

// TestPreAuthChunkAllocation: clients that set a 10 MiB chunk size and announce a 16 MB
// message, 28 bytes after the handshake, are disconnected at once and hold no memory; the
// library used to allocate each one's 10 MiB chunk and wait for it.
func TestPreAuthChunkAllocation(t *testing.T) {
	addr := startServerConfig(t, Config{HandshakeTimeout: 30 * time.Second}, partSink{})
	const clients = 8 // MaxPendingPerIP: none is evicted to make room
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		if _, _, err := handshake.DoClient(c, false, false); err != nil {
			t.Fatal(err)
		}
		// Set Chunk Size 10 MiB on chunk stream 2, then a type 0 header on chunk stream 3
		// announcing a 0xFFFFFF-byte AMF0 command, and no body.
		msg := []byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x00, 0xa0, 0x00, 0x00,
			0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	// The library allocates on reading the header: by the time the server has answered every
	// client, whatever they cost is held.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	closed := 0
	for _, c := range conns {
		deadline, _ := ctx.Deadline()
		_ = c.SetReadDeadline(deadline)
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					closed++
				}
				break
			}
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KiB", grew>>10)
	if grew > 20<<20 {
		t.Errorf("%d unauthenticated clients grew the heap by %d MiB", clients, grew>>20)
	}
	if closed != clients {
		t.Errorf("%d of %d clients announcing a chunk past the budget were disconnected", closed, clients)
	}
}

// FuzzChunkGuard: on any input the guard does not panic, and where it stops does not depend on
// how the bytes were split into reads.
func FuzzChunkGuard(f *testing.F) {
	f.Add(clientStream(&testing.T{}, []message.Message{&message.SetChunkSize{Value: 10 << 20}}), 100)
	f.Add(append(clientStream(&testing.T{}, []message.Message{&message.SetChunkSize{Value: 1}}), 0x03, 0xff, 0xff, 0xff, 0, 0, 9, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0xc3), 7)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole := newChunkGuard(64 << 10)
		pw, errw := whole.scan(data)
		parts := newChunkGuard(64 << 10)
		pp := 0
		var errp error
		for rest, step := data, max(1, split%512); len(rest) > 0 && errp == nil; {
			n := min(step, len(rest))
			var pass int
			pass, errp = parts.scan(rest[:n])
			pp += pass
			if pass < n {
				break
			}
			rest = rest[n:]
		}
		if (errw == nil) != (errp == nil) || (errw == nil && pw != pp) || whole.off != parts.off || whole.chunkSize != parts.chunkSize {
			t.Fatalf("whole: pass %d err %v off %v size %d; in parts: pass %d err %v off %v size %d",
				pw, errw, whole.off, whole.chunkSize, pp, errp, parts.off, parts.chunkSize)
		}
	})
}
