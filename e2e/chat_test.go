package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/fasthttp/websocket"
)

// chatClient is the real aws-sdk-go-v2 IVS Chat client pointed at the node.
func (n *node) chatClient() *ivschat.Client {
	return ivschat.New(ivschat.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(n.endpoint()),
		Credentials:      staticCreds(testAccessKey, testSecret),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkHTTP,
	})
}

func (n *node) chatURL() string { return "ws://" + n.HTTP + "/chat" }

// chatRoom creates a room and returns its ARN.
func chatRoom(t *testing.T, ctx context.Context, c *ivschat.Client, in *ivschat.CreateRoomInput) string {
	t.Helper()
	if in == nil {
		in = &ivschat.CreateRoomInput{}
	}
	out, err := c.CreateRoom(ctx, in)
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	return *out.Arn
}

// chatToken mints a token through the API.
func chatToken(t *testing.T, ctx context.Context, c *ivschat.Client, room, user string, attrs map[string]string, caps ...chattypes.ChatTokenCapability) string {
	t.Helper()
	out, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String(user),
		Attributes: attrs, Capabilities: caps})
	if err != nil {
		t.Fatalf("CreateChatToken: %v", err)
	}
	return *out.Token
}

var allCaps = []chattypes.ChatTokenCapability{chattypes.ChatTokenCapabilitySendMessage, chattypes.ChatTokenCapabilityDeleteMessage, chattypes.ChatTokenCapabilityDisconnectUser}

// frame is any server frame, decoded loosely.
type frame struct {
	Type         string
	Id           string
	RequestId    string
	Content      string
	Attributes   map[string]string
	SendTime     string
	EventName    string
	ErrorCode    int
	ErrorMessage string
	Sender       struct {
		UserId     string
		Attributes map[string]string
	}
	raw []byte
}

// wsClient is a raw WebSocket chat client, for checks below the SDK (frame types, close codes).
type wsClient struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan frame
	closed chan error // the read error (a *websocket.CloseError for a close frame)
}

func dialChat(t *testing.T, url, tok string) (*wsClient, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Subprotocols: []string{tok}}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, resp, err
	}
	w := &wsClient{t: t, c: c, frames: make(chan frame, 1024), closed: make(chan error, 1)}
	go func() {
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				w.closed <- err
				close(w.frames)
				return
			}
			if typ != websocket.TextMessage {
				w.closed <- errors.New("server sent a binary frame")
				close(w.frames)
				return
			}
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				w.closed <- err
				close(w.frames)
				return
			}
			f.raw = b
			w.frames <- f
		}
	}()
	t.Cleanup(func() { c.Close() })
	return w, resp, nil
}

func mustDial(t *testing.T, url, tok string) *wsClient {
	t.Helper()
	w, resp, err := dialChat(t, url, tok)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial chat: %v (HTTP %d)", err, status)
	}
	if got := w.c.Subprotocol(); got != tok {
		t.Fatalf("subprotocol not echoed: %q", got)
	}
	return w
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	if err := w.c.WriteMessage(websocket.TextMessage, b); err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

// next waits for the next frame that match accepts, skipping others.
func (w *wsClient) next(match func(frame) bool) frame {
	w.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case f, ok := <-w.frames:
			if !ok {
				w.t.Fatalf("connection closed while waiting for a frame: %v", <-w.closed)
			}
			if match == nil || match(f) {
				return f
			}
		case <-timeout:
			w.t.Fatal("no matching frame within 15s")
		}
	}
}

func byRequest(id string) func(frame) bool { return func(f frame) bool { return f.RequestId == id } }

// waitClosed waits for the connection to end and returns its close error.
func (w *wsClient) waitClosed() error {
	w.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-w.frames:
			if !ok {
				return <-w.closed
			}
		case <-timeout:
			w.t.Fatal("connection not closed within 15s")
		}
	}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

func roomID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// startChatServe is startServe that shows the server's log when the test fails.
func startChatServe(t *testing.T, extra ...string) *node {
	t.Helper()
	n := startServe(t, "", extra...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("glasscast log:\n%s", n.Logs())
		}
	})
	return n
}
