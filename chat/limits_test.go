package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"glasscast/chat/token"
)

// TestMalformedFramesCharged: malformed and binary frames spend the connection's budget like
// requests do; past it they get ERROR 429, and a client that keeps on is closed with 1008.
func TestMalformedFramesCharged(t *testing.T) {
	e := newEnv(t, Config{ConnRequestsPerSecond: 0.1, ConnRequestBurst: 3})
	a := e.dial("a", token.SendMessage)
	for i := range 20 {
		typ, data := websocket.TextMessage, []byte(`{"Action":`)
		if i%2 == 1 {
			typ, data = websocket.BinaryMessage, []byte{1, 2, 3}
		}
		if err := a.WriteMessage(typ, data); err != nil {
			break
		}
	}
	codes := map[float64]int{}
	var end error
	for {
		_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := a.ReadMessage()
		if err != nil {
			end = err
			break
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		code, _ := f["ErrorCode"].(float64)
		codes[code]++
	}
	// 3 within the burst are answered 400, 3 more get 429, the next one ends the connection.
	if codes[400] != 3 || codes[429] != 3 || len(codes) != 2 {
		t.Errorf("answers to 20 bad frames against a burst of 3: %v", codes)
	}
	var ce *websocket.CloseError
	if !errors.As(end, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("connection ended with %v; want close 1008", end)
	}
}

// TestRateLimitAnswersRequestID: a well-formed request refused for its rate gets its
// RequestId back, so the SDK's promise for it settles.
func TestRateLimitAnswersRequestID(t *testing.T) {
	e := newEnv(t, Config{ConnRequestsPerSecond: 0.1, ConnRequestBurst: 1})
	a := e.dial("a", token.SendMessage)
	for i := range 2 {
		if err := a.WriteJSON(map[string]any{"Action": "SEND_MESSAGE", "RequestId": fmt.Sprint("r", i), "Content": "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	// The refusal is answered at once, the message once it went round the relay: either first.
	got := map[any]map[string]any{}
	for range 2 {
		f := readFrame(t, a)
		got[f["RequestId"]] = f
	}
	if got["r0"]["Type"] != "MESSAGE" || got["r1"]["ErrorCode"] != float64(429) {
		t.Fatalf("two requests against a burst of 1: %v", got)
	}
}

// TestFailedUpgradeKeepsToken: a handshake refused before the upgrade leaves the token
// unclaimed, on net/http and on fasthttp; a successful one claims it.
func TestFailedUpgradeKeepsToken(t *testing.T) {
	e := newEnv(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: e.srv.ServeFastHTTP}
	go func() { _ = fs.Serve(ln) }()
	t.Cleanup(func() { _ = fs.Shutdown() })

	for _, url := range []string{e.url, "ws://" + ln.Addr().String() + "/chat"} {
		tok, err := e.be.MintToken(context.Background(), token.Claims{RoomID: e.roomID, UserID: "u", Capabilities: []string{token.SendMessage},
			TokenExpires: time.Now().Add(time.Minute), SessionExpires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		host := strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/chat"), "/")
		for _, bad := range []struct {
			headers string
			status  int
		}{
			{"Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", http.StatusUpgradeRequired},
			{"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n", http.StatusBadRequest},
		} {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n%sSec-WebSocket-Protocol: %s\r\n\r\n", host, bad.headers, tok)
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != bad.status {
				t.Errorf("%s: %q: HTTP %d, want %d", url, bad.headers, resp.StatusCode, bad.status)
			}
		}
		c, resp, err := (&websocket.Dialer{Subprotocols: []string{tok}}).Dial(url, nil)
		if err != nil {
			t.Fatalf("%s: the token was spent by failed handshakes: %v (%v)", url, err, resp)
		}
		c.Close()
		if _, resp, err := (&websocket.Dialer{Subprotocols: []string{tok}}).Dial(url, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: a token used once was accepted again: %v", url, err)
		}
	}
}
