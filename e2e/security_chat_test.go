package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// TestChatFloodMalformed: malformed and binary frames count against the connection's request
// rate like any other: a burst of 300 gets ERROR 429s past the budget, not 300 ERROR 400s,
// and a client that keeps on is disconnected.
func TestChatFloodMalformed(t *testing.T) {
	n := startChatServe(t)
	ctx := ctxT(t, time.Minute)
	cc := n.chatClient()
	room := chatRoom(t, ctx, cc, nil)
	w := mustDial(t, n.chatURL(), chatToken(t, ctx, cc, room, "flooder", nil, allCaps...))

	for i := range 300 {
		typ, data := websocket.TextMessage, []byte("{not json")
		if i%3 == 0 {
			typ, data = websocket.BinaryMessage, []byte{0xde, 0xad, 0xbe, 0xef}
		}
		if err := w.c.WriteMessage(typ, data); err != nil {
			break // the server may hang up before the burst is over
		}
	}
	counts := map[int]int{}
	var end error
	timeout := time.After(15 * time.Second)
loop:
	for {
		select {
		case f, ok := <-w.frames:
			if !ok {
				end = <-w.closed
				break loop
			}
			if f.Type == "ERROR" {
				counts[f.ErrorCode]++
			}
		case <-timeout:
			break loop
		}
	}
	t.Logf("answers to 300 malformed frames: %v; connection ended with %v", counts, end)
	if counts[429] == 0 {
		t.Errorf("no ERROR 429 for a burst of 300 malformed frames: %v", counts)
	}
	if counts[400] >= 300 {
		t.Errorf("every malformed frame was answered: %v", counts)
	}
	if end == nil {
		t.Fatal("the flooding connection is still open 15 s later")
	}
	if code := closeCode(end); code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d (%v); want 1008", code, end)
	}
}

// TestChatFailedUpgradeKeepsToken: a handshake the server refuses before upgrading (an
// unsupported Sec-WebSocket-Version) does not use up the chat token it offered.
func TestChatFailedUpgradeKeepsToken(t *testing.T) {
	n := startChatServe(t)
	ctx := ctxT(t, time.Minute)
	cc := n.chatClient()
	room := chatRoom(t, ctx, cc, nil)
	tok := chatToken(t, ctx, cc, room, "u1", nil, allCaps...)

	key := make([]byte, 16)
	_, _ = rand.Read(key)
	for _, bad := range []struct{ name, header string }{
		{"version 99", "Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key)},
		{"no key", "Sec-WebSocket-Version: 13"},
	} {
		conn, err := net.Dial("tcp", n.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n%s\r\nSec-WebSocket-Protocol: %s\r\n\r\n", n.HTTP, bad.header, tok)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", bad.name, err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			t.Fatalf("%s: the server upgraded a bad handshake", bad.name)
		}
		t.Logf("%s: HTTP %d", bad.name, resp.StatusCode)
	}
	w, resp, err := dialChat(t, n.chatURL(), tok)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("the token no longer works after failed upgrades: %v (HTTP %d)", err, status)
	}
	w.send(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "r1", "Content": "still mine"})
	if f := w.next(byRequest("r1")); f.Type != "MESSAGE" || !strings.Contains(f.Content, "still mine") {
		t.Fatalf("after reconnecting: %s", f.raw)
	}
	// A successful upgrade does use the token.
	if _, resp, err := dialChat(t, n.chatURL(), tok); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a used token was accepted again: %v", err)
	}
}
