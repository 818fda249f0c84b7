package rtmp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"glasscast/bus"
	"glasscast/ingest"
	"glasscast/store"
)

// FuzzConnection feeds arbitrary bytes to the RTMP connection handler, as a hostile client
// would: it must return (refusing or disconnecting) without panicking.
func FuzzConnection(f *testing.F) {
	// A real RTMP client greeting: C0 (version 3) + C1 (1536 bytes), then garbage.
	c0c1 := append([]byte{3}, bytes.Repeat([]byte{0}, 1536)...)
	f.Add(c0c1)
	f.Add(append(append([]byte{}, c0c1...), bytes.Repeat([]byte{0x02, 0, 0, 0, 0xff, 0xff, 0xff, 0x14}, 200)...))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte{6})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: f.TempDir(), Name: "fuzz"}, log)
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{}, ingest.New(ingest.Config{}, st, b.Conn, nil, log), log)
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			pc, _ := s.adm.admit(server)
			s.handle(ctx, server, pc, false)
		}()
		go func() {
			// Write what the fuzzer gave, drain what the server says, then hang up.
			go func() { _, _ = io.Copy(io.Discard, client) }()
			_ = client.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = client.Write(data)
			client.Close()
		}()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("handler did not return after the client hung up")
		}
	})
}
