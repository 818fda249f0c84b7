package e2e

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/fasthttp/websocket"
)

var reFrameID = regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)

// TestChatRelay drives the messaging WebSocket with a raw client and the real aws-sdk-go-v2 IVS
// Chat client: frames, capabilities, limits, single-use tokens, moderation from both sides, live
// room updates and deletion.
func TestChatRelay(t *testing.T) {
	n := startChatServe(t)
	c := n.chatClient()
	ctx := ctxT(t, 3*time.Minute)
	room := chatRoom(t, ctx, c, &ivschat.CreateRoomInput{MaximumMessageLength: aws.Int32(20), MaximumMessageRatePerSecond: aws.Int32(5)})

	aliceTok := chatToken(t, ctx, c, room, "alice", map[string]string{"color": "red"}, allCaps...)
	alice := mustDial(t, n.chatURL(), aliceTok)
	bob := mustDial(t, n.chatURL(), chatToken(t, ctx, c, room, "bob", nil))

	// Tokens are single use, wherever presented; a forged one is refused too.
	for name, tok := range map[string]string{"reused": aliceTok, "forged": aliceTok[:len(aliceTok)-4] + "AAAA", "empty": ""} {
		_, resp, err := dialChat(t, n.chatURL(), tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s token: want 401, got %v %v", name, err, resp)
		}
	}

	// A message reaches everyone, the sender included, with the sender's RequestId and attributes.
	alice.send(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "r1", "Content": "hello", "Attributes": map[string]string{"k": "v"}})
	for _, w := range []*wsClient{alice, bob} {
		f := w.next(byRequest("r1"))
		if f.Type != "MESSAGE" || f.Content != "hello" || f.Attributes["k"] != "v" || f.Sender.UserId != "alice" ||
			f.Sender.Attributes["color"] != "red" || !reFrameID.MatchString(f.Id) {
			t.Fatalf("message frame %s", f.raw)
		}
		if _, err := time.Parse(time.RFC3339Nano, f.SendTime); err != nil || len(f.SendTime) != len("2006-01-02T15:04:05.000000000Z") {
			t.Fatalf("SendTime %q: %v", f.SendTime, err)
		}
	}

	errFrame := func(w *wsClient, req map[string]any, code int) {
		t.Helper()
		w.send(req)
		f := w.next(byRequest(req["RequestId"].(string)))
		if f.Type != "ERROR" || f.ErrorCode != code || f.ErrorMessage == "" || !reFrameID.MatchString(f.Id) {
			t.Fatalf("%v: want ERROR %d, got %s", req, code, f.raw)
		}
	}
	errFrame(bob, map[string]any{"Action": "SEND_MESSAGE", "RequestId": "b1", "Content": "hi"}, 403)
	errFrame(bob, map[string]any{"Action": "DELETE_MESSAGE", "RequestId": "b2", "Id": "abcdefABCDEF"}, 403)
	errFrame(bob, map[string]any{"Action": "DISCONNECT_USER", "RequestId": "b3", "UserId": "alice"}, 403)
	errFrame(alice, map[string]any{"Action": "SEND_MESSAGE", "RequestId": "a1", "Content": strings.Repeat("x", 21)}, 413)
	errFrame(alice, map[string]any{"Action": "SEND_MESSAGE", "RequestId": "a2"}, 400)
	errFrame(alice, map[string]any{"Action": "DANCE", "RequestId": "a3"}, 400)
	errFrame(alice, map[string]any{"Action": "DELETE_MESSAGE", "RequestId": "a4", "Id": "short"}, 400)
	errFrame(alice, map[string]any{"Action": "SEND_MESSAGE", "RequestId": "a5", "Content": "x", "Attributes": map[string]any{"n": 1}}, 400)
	if err := alice.c.WriteMessage(websocket.BinaryMessage, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if f := alice.next(func(f frame) bool { return f.Type == "ERROR" }); f.ErrorCode != 400 {
		t.Fatalf("binary frame: %s", f.raw)
	}
	// 20 emoji are 20 code points (80 bytes): within a 20-character limit.
	alice.send(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "a6", "Content": strings.Repeat("😀", 20)})
	emoji := bob.next(byRequest("a6"))
	if emoji.Type != "MESSAGE" {
		t.Fatalf("20 emoji: %s", emoji.raw)
	}

	// Deleting a message: the event carries both spellings of the id and resolves the request.
	alice.send(map[string]any{"Action": "DELETE_MESSAGE", "RequestId": "d1", "Id": emoji.Id, "Reason": "spam"})
	for _, w := range []*wsClient{alice, bob} {
		f := w.next(byRequest("d1"))
		if f.Type != "EVENT" || f.EventName != "aws:DELETE_MESSAGE" || f.Attributes["MessageID"] != emoji.Id ||
			f.Attributes["MessageId"] != emoji.Id || f.Attributes["Reason"] != "spam" {
			t.Fatalf("delete event %s", f.raw)
		}
	}

	// API events reach the clients with an empty RequestId and the Id the API returned.
	ev, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: aws.String(room), EventName: aws.String("poll"), Attributes: map[string]string{"q": "?"}})
	if err != nil {
		t.Fatal(err)
	}
	if f := bob.next(func(f frame) bool { return f.Type == "EVENT" && f.EventName == "poll" }); f.Id != *ev.Id || f.RequestId != "" || f.Attributes["q"] != "?" {
		t.Fatalf("API event %s, API id %s", f.raw, *ev.Id)
	}
	del, err := c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(room), Id: aws.String(emoji.Id), Reason: aws.String("mod")})
	if err != nil {
		t.Fatal(err)
	}
	if f := bob.next(func(f frame) bool { return f.Id == *del.Id }); f.EventName != "aws:DELETE_MESSAGE" || f.Attributes["MessageID"] != emoji.Id {
		t.Fatalf("API delete %s", f.raw)
	}

	// The room-wide rate: a burst over 5 per second is refused with 429.
	time.Sleep(1100 * time.Millisecond)
	refused := 0
	for i := 0; i < 10; i++ {
		alice.send(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "burst" + string(rune('a'+i)), "Content": "b"})
	}
	// Refusals come straight back while accepted messages take the stream: collect in any order.
	seen := map[string]bool{}
	for len(seen) < 10 {
		f := alice.next(func(f frame) bool { return strings.HasPrefix(f.RequestId, "burst") })
		seen[f.RequestId] = true
		if f.Type == "ERROR" {
			if f.ErrorCode != 429 {
				t.Fatalf("burst: %s", f.raw)
			}
			refused++
		}
	}
	if refused < 5 {
		t.Fatalf("burst of 10 at 5/s: only %d refused", refused)
	}

	// UpdateRoom applies to the live room.
	time.Sleep(1100 * time.Millisecond)
	if _, err := c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: aws.String(room), MaximumMessageLength: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	errFrame(alice, map[string]any{"Action": "SEND_MESSAGE", "RequestId": "u1", "Content": "four"}, 413)

	// DisconnectUser from the API: every connection of the user gets the event, then a 1000 close.
	bob2 := mustDial(t, n.chatURL(), chatToken(t, ctx, c, room, "bob", nil))
	if _, err := c.DisconnectUser(ctx, &ivschat.DisconnectUserInput{RoomIdentifier: aws.String(room), UserId: aws.String("bob"), Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*wsClient{bob, bob2} {
		w.next(func(f frame) bool { return f.EventName == "aws:DISCONNECT_USER" && f.Attributes["UserId"] == "bob" })
		if code := closeCode(w.waitClosed()); code != websocket.CloseNormalClosure {
			t.Fatalf("kicked user closed with %d", code)
		}
	}
	alice.next(func(f frame) bool { return f.EventName == "aws:DISCONNECT_USER" })

	// DISCONNECT_USER from a moderator's socket.
	carol := mustDial(t, n.chatURL(), chatToken(t, ctx, c, room, "carol", nil))
	alice.send(map[string]any{"Action": "DISCONNECT_USER", "RequestId": "k1", "UserId": "carol", "Reason": "rude"})
	if f := alice.next(byRequest("k1")); f.EventName != "aws:DISCONNECT_USER" || f.Attributes["Reason"] != "rude" {
		t.Fatalf("kick event %s", f.raw)
	}
	if code := closeCode(carol.waitClosed()); code != websocket.CloseNormalClosure {
		t.Fatalf("carol closed with %d", code)
	}

	// DeleteRoom disconnects the room's clients; the room takes no new tokens.
	if _, err := c.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: aws.String(room)}); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(alice.waitClosed()); code != websocket.CloseNormalClosure {
		t.Fatalf("deleted room closed with %d", code)
	}
	_, err = c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("x")})
	wantCode(t, err, "ResourceNotFoundException")
}

// TestChatTLS connects over wss:// to the HTTPS listener (net/http, beside fasthttp's HTTP/1.1
// listener) and chats with a client on plain ws://: both listeners serve one relay.
func TestChatTLS(t *testing.T) {
	n := startChatServe(t)
	c := n.chatClient()
	ctx := ctxT(t, time.Minute)
	room := chatRoom(t, ctx, c, nil)
	tok := chatToken(t, ctx, c, room, "secure", nil, allCaps...)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: []string{tok},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the node's self-signed certificate
	conn, _, err := d.Dial("wss://"+n.HTTPS+"/chat", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer conn.Close()
	if conn.Subprotocol() != tok {
		t.Fatal("subprotocol not echoed over TLS")
	}
	plain := mustDial(t, n.chatURL(), chatToken(t, ctx, c, room, "plain", nil))
	if err := conn.WriteJSON(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "tls", "Content": "over TLS"}); err != nil {
		t.Fatal(err)
	}
	if f := plain.next(byRequest("tls")); f.Content != "over TLS" || f.Sender.UserId != "secure" {
		t.Fatalf("frame %s", f.raw)
	}
}

// TestChatReviewTarget maps a room's Lambda ARN review handler to a webhook by configuration, as
// a self-hosted deployment has no Lambda: the webhook's DENY reaches the sender as ERROR 406.
func TestChatReviewTarget(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var p struct{ Content, RoomArn string }
		_ = json.NewDecoder(r.Body).Decode(&p)
		if strings.Contains(p.Content, "spam") {
			_, _ = w.Write([]byte(`{"ReviewResult":"DENY","Attributes":{"Reason":"no spam"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"ReviewResult":"ALLOW","Content":"` + strings.ToUpper(p.Content) + `"}`))
	}))
	defer hook.Close()
	lambda := "arn:aws:lambda:us-east-1:123456789012:function:moderate"
	n := startChatServe(t, "--chat-review-targets", lambda+"="+hook.URL)
	c := n.chatClient()
	ctx := ctxT(t, time.Minute)
	room := chatRoom(t, ctx, c, &ivschat.CreateRoomInput{MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String(lambda)}})
	w := mustDial(t, n.chatURL(), chatToken(t, ctx, c, room, "u", nil, allCaps...))
	w.send(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "1", "Content": "buy spam"})
	if f := w.next(byRequest("1")); f.Type != "ERROR" || f.ErrorCode != 406 || f.ErrorMessage != "no spam" {
		t.Fatalf("denied message: %s", f.raw)
	}
	w.send(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "2", "Content": "hello"})
	if f := w.next(byRequest("2")); f.Type != "MESSAGE" || f.Content != "HELLO" {
		t.Fatalf("edited message: %s", f.raw)
	}
	if calls.Load() != 2 {
		t.Fatalf("webhook called %d times", calls.Load())
	}
}
