package chat

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/fasthttp/websocket"
)

// BenchmarkFanOut measures one room message reaching 100 clients over real WebSockets and NATS:
// publish to the stream, the room's consumer, the frame written to every client, every client
// reading it.
func BenchmarkFanOut(b *testing.B) {
	e := newEnv(b, Config{})
	const clients = 100
	var conns []*websocket.Conn
	for i := 0; i < clients; i++ {
		conns = append(conns, e.dial(fmt.Sprint("c", i)))
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, c := range conns {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			for i := 0; i < b.N; i++ {
				if _, _, err := c.ReadMessage(); err != nil {
					b.Error(err)
					return
				}
			}
		}(c)
	}
	for i := 0; i < b.N; i++ {
		if _, err := e.be.SendEvent(context.Background(), e.roomID, "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*clients), "ns/delivery")
}
