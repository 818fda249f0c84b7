package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"glasscast/bus"
	"glasscast/chat/token"
	"glasscast/store"
)

// env is a relay on a real embedded NATS, served by httptest.
type env struct {
	t      testing.TB
	st     *store.Store
	srv    *Server
	be     *Backend
	url    string
	roomID string
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: t.TempDir(), Name: "chat-test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Region, cfg.Account = "us-east-1", "000000000000"
	srv, err := New(ctx, cfg, st, b.JS, log)
	if err != nil {
		t.Fatal(err)
	}
	be, err := NewBackend(ctx, st, b.JS, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		cancel()
		b.Close()
	})
	now := time.Now()
	e := &env{t: t, st: st, srv: srv, be: be, url: "ws" + strings.TrimPrefix(hs.URL, "http"), roomID: "roomABCDEF12"}
	if err := st.Rooms.Create(ctx, e.roomID, store.Room{ID: e.roomID, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 100, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) dial(user string, caps ...string) *websocket.Conn {
	e.t.Helper()
	tok, err := e.be.MintToken(context.Background(), token.Claims{RoomID: e.roomID, UserID: user, Capabilities: caps,
		TokenExpires: time.Now().Add(time.Minute), SessionExpires: time.Now().Add(time.Hour)})
	if err != nil {
		e.t.Fatal(err)
	}
	c, _, err := (&websocket.Dialer{Subprotocols: []string{tok}}).Dial(e.url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func readFrame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSendReceive(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.dial("a", token.SendMessage)
	b := e.dial("b")
	if err := a.WriteJSON(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "1", "Content": "hi"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{a, b} {
		if f := readFrame(t, c); f["Type"] != "MESSAGE" || f["Content"] != "hi" || f["RequestId"] != "1" {
			t.Fatalf("frame %v", f)
		}
	}
}

// TestFastHTTP serves the same relay from a fasthttp listener.
func TestFastHTTP(t *testing.T) {
	e := newEnv(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: e.srv.ServeFastHTTP}
	go func() { _ = fs.Serve(ln) }()
	t.Cleanup(func() { _ = fs.Shutdown() })
	e.url = "ws://" + ln.Addr().String() + "/chat"
	a := e.dial("a", token.SendMessage)
	b := e.dial("b")
	if err := a.WriteJSON(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "1", "Content": "hi"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{a, b} {
		if f := readFrame(t, c); f["Type"] != "MESSAGE" || f["Content"] != "hi" || f["RequestId"] != "1" {
			t.Fatalf("frame %v", f)
		}
	}
}

// TestSlowClient: a client that stops reading is disconnected once its queue fills, while the
// room's other clients get every frame.
func TestSlowClient(t *testing.T) {
	e := newEnv(t, Config{SendQueue: 256})
	slow := e.dial("slow")
	fast := e.dial("fast")
	_ = slow // never read
	const events = 4000
	big := map[string]string{"pad": strings.Repeat("x", 8000)}
	got := make(chan int)
	go func() {
		n := 0
		_ = fast.SetReadDeadline(time.Now().Add(60 * time.Second))
		for n < events {
			if _, _, err := fast.ReadMessage(); err != nil {
				t.Logf("fast client: %v", err)
				break
			}
			n++
		}
		got <- n
	}()
	ctx := context.Background()
	for i := 0; i < events; i++ {
		if _, err := e.be.SendEvent(ctx, e.roomID, "flood", big); err != nil {
			t.Fatal(err)
		}
	}
	if n := <-got; n != events {
		t.Fatalf("fast client got %d of %d frames", n, events)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.srv.Conns() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("slow client still connected: %d connections", e.srv.Conns())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRateWindow checks the room-wide window: reservations count until their message is seen in
// the stream, then the message counts for a second.
func TestRateWindow(t *testing.T) {
	var w rateWindow
	now := time.Now()
	if !w.reserve("a", 2, now) || !w.reserve("b", 2, now) || w.reserve("c", 2, now) {
		t.Fatal("two of three should pass a limit of 2")
	}
	w.observe("a", now)
	w.release("b")
	if !w.reserve("d", 2, now) || w.reserve("e", 2, now) {
		t.Fatal("after a release one more should pass")
	}
	w.observe("d", now)
	// Messages another edge admitted count too.
	w.observe("remote", now.Add(500*time.Millisecond))
	if w.reserve("f", 3, now.Add(600*time.Millisecond)) {
		t.Fatal("three seen in the last second: a limit of 3 is reached")
	}
	if !w.reserve("g", 3, now.Add(1100*time.Millisecond)) {
		t.Fatal("a second later the window has room")
	}
}

// TestFastHTTPCloseRace closes clients while the room is deleted under them: the server's
// writers must be done with a connection before fasthttp recycles it.
func TestFastHTTPCloseRace(t *testing.T) {
	e := newEnv(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: e.srv.ServeFastHTTP}
	go func() { _ = fs.Serve(ln) }()
	t.Cleanup(func() { _ = fs.Shutdown() })
	e.url = "ws://" + ln.Addr().String() + "/chat"
	for round := 0; round < 5; round++ {
		var clients []*websocket.Conn
		for i := 0; i < 100; i++ {
			clients = append(clients, e.dial(fmt.Sprint("u", i)))
		}
		go func() {
			for _, c := range clients {
				_ = c.Close()
			}
		}()
		for i := 0; i < 20; i++ {
			if _, err := e.be.SendEvent(context.Background(), e.roomID, "x", nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.be.RoomDeleted(context.Background(), e.roomID); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.srv.Conns() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections left", e.srv.Conns())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestConnRequestLimit: one connection's requests are limited whatever its capabilities.
func TestConnRequestLimit(t *testing.T) {
	e := newEnv(t, Config{ConnRequestsPerSecond: 1, ConnRequestBurst: 3})
	a := e.dial("a", token.DeleteMessage)
	for i := 0; i < 5; i++ {
		if err := a.WriteJSON(map[string]any{"Action": "DELETE_MESSAGE", "RequestId": fmt.Sprint(i), "Id": "abcdefABCDEF"}); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[any]int{}
	for i := 0; i < 5; i++ {
		f := readFrame(t, a)
		codes[f["ErrorCode"]]++
	}
	if codes[float64(429)] != 2 || codes[nil] != 3 {
		t.Fatalf("5 requests against a burst of 3: %v", codes)
	}
}

// TestDisconnectedUserIsNotServed: once a user is disconnected, whatever its connection still
// sends (here it ignores the close and keeps posting) reaches nobody, and the connection is
// dropped without waiting on the client.
func TestDisconnectedUserIsNotServed(t *testing.T) {
	e := newEnv(t, Config{})
	bad := e.dial("bad", token.SendMessage, token.DeleteMessage, token.DisconnectUser)
	watcher := e.dial("watcher")
	ctx := context.Background()
	if _, err := e.be.DisconnectUser(ctx, e.roomID, "bad", "banned"); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, watcher); f["EventName"] != "aws:DISCONNECT_USER" {
		t.Fatalf("frame %v", f)
	}
	// Wait for the close to be queued on bad's connection, which never reads it.
	deadline := time.Now().Add(5 * time.Second)
	for !e.closeQueued("bad") {
		if time.Now().After(deadline) {
			t.Fatal("no close queued for the disconnected user")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 40; i++ {
		if err := bad.WriteJSON(map[string]any{"Action": "SEND_MESSAGE", "RequestId": fmt.Sprint(i), "Content": "still here"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = bad.WriteJSON(map[string]any{"Action": "DELETE_MESSAGE", "RequestId": "d", "Id": "abcdefABCDEF"})
	_ = bad.WriteJSON(map[string]any{"Action": "DISCONNECT_USER", "RequestId": "u", "UserId": "someone"})
	// Once the server has dropped bad, it has served all it ever will of bad's frames.
	for e.srv.Conns() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the disconnected user's connection is still open: %d connections", e.srv.Conns())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.be.SendEvent(ctx, e.roomID, "marker", nil); err != nil {
		t.Fatal(err)
	}
	for {
		f := readFrame(t, watcher)
		if f["EventName"] == "marker" {
			break
		}
		t.Errorf("after the disconnect the room got %v", f)
	}
}

// TestCloseDoesNotWaitOnStalledClient: a client that stopped reading keeps its connection no
// longer than closeGrace after it is told to go, although the frames ahead of the close (and
// the close) can never be written and the write timeout is long.
func TestCloseDoesNotWaitOnStalledClient(t *testing.T) {
	e := newEnv(t, Config{WriteTimeout: time.Minute, SendQueue: 1024})
	_ = e.dial("stalled") // never read
	ctx := context.Background()
	big := map[string]string{"pad": strings.Repeat("x", 32<<10)}
	for i := 0; i < 512; i++ { // 16 MB: more than the socket buffers of both ends hold
		if _, err := e.be.SendEvent(ctx, e.roomID, "flood", big); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.be.DisconnectUser(ctx, e.roomID, "stalled", "banned"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for e.srv.Conns() != 0 {
		if time.Since(start) > closeGrace+3*time.Second {
			t.Fatalf("a stalled client is still connected %v after its disconnect", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closeQueued reports whether user has a connection on this server that was told to go.
func (e *env) closeQueued(user string) bool {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	for c := range e.srv.conns {
		if c.claims.UserID == user && c.closeQueued() {
			return true
		}
	}
	return false
}
