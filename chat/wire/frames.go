// Package wire holds IVS Chat's data formats: the JSON frames the messaging WebSocket carries in
// both directions, and the envelope that carries a room's frames between nodes on a JetStream
// stream. Frames are built here once and their bytes are what every client and log receives.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"glasscast/auth"
)

// Frame types, the Type member of server frames.
const (
	TypeMessage = "MESSAGE"
	TypeEvent   = "EVENT"
	TypeError   = "ERROR"
)

// Client actions, the Action member of client frames.
const (
	ActionSendMessage    = "SEND_MESSAGE"
	ActionDeleteMessage  = "DELETE_MESSAGE"
	ActionDisconnectUser = "DISCONNECT_USER"
)

// Events the service itself sends; the SDK turns them into messageDelete and userDisconnect.
const (
	EventDeleteMessage  = "aws:DELETE_MESSAGE"
	EventDisconnectUser = "aws:DISCONNECT_USER"
)

// Message is a MESSAGE frame. Member order and names follow AWS's frames.
type Message struct {
	Type       string            `json:"Type"`
	Id         string            `json:"Id"`
	RequestId  string            `json:"RequestId"`
	Attributes map[string]string `json:"Attributes"`
	Content    string            `json:"Content"`
	SendTime   string            `json:"SendTime"`
	Sender     Sender            `json:"Sender"`
}

// Sender is the user a MESSAGE comes from, with the attributes of their token.
type Sender struct {
	UserId     string            `json:"UserId"`
	Attributes map[string]string `json:"Attributes"`
}

// Event is an EVENT frame.
type Event struct {
	Type       string            `json:"Type"`
	Id         string            `json:"Id"`
	RequestId  string            `json:"RequestId"`
	EventName  string            `json:"EventName"`
	Attributes map[string]string `json:"Attributes"`
	SendTime   string            `json:"SendTime"`
}

// Error is an ERROR frame; it rejects the client's request with the same RequestId.
type Error struct {
	Type         string `json:"Type"`
	Id           string `json:"Id"`
	RequestId    string `json:"RequestId"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// NewID returns a frame Id: 12 random alphanumerics, as AWS's, unique across all frames so that
// the SDK, which drops any Id it has seen, never drops a new frame.
func NewID() string { return auth.NewID() }

// FormatTime renders a SendTime as AWS does: UTC with nanoseconds.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// NewMessage builds a MESSAGE frame; attrs nil is sent as null, as AWS does.
func NewMessage(requestID, content string, attrs map[string]string, userID string, senderAttrs map[string]string, now time.Time) Message {
	if len(attrs) == 0 {
		attrs = nil
	}
	return Message{Type: TypeMessage, Id: NewID(), RequestId: requestID, Attributes: attrs, Content: content,
		SendTime: FormatTime(now), Sender: Sender{UserId: userID, Attributes: nonNil(senderAttrs)}}
}

// NewEvent builds an EVENT frame.
func NewEvent(requestID, name string, attrs map[string]string, now time.Time) Event {
	return Event{Type: TypeEvent, Id: NewID(), RequestId: requestID, EventName: name, Attributes: nonNil(attrs), SendTime: FormatTime(now)}
}

// NewDeleteEvent builds aws:DELETE_MESSAGE. It carries the message id as MessageID, which SDK
// 1.1.1 requires, and as MessageId, which AWS's current documentation names.
func NewDeleteEvent(requestID, messageID, reason string, now time.Time) Event {
	attrs := map[string]string{"MessageID": messageID, "MessageId": messageID}
	if reason != "" {
		attrs["Reason"] = reason
	}
	return NewEvent(requestID, EventDeleteMessage, attrs, now)
}

// NewDisconnectEvent builds aws:DISCONNECT_USER.
func NewDisconnectEvent(requestID, userID, reason string, now time.Time) Event {
	attrs := map[string]string{"UserId": userID}
	if reason != "" {
		attrs["Reason"] = reason
	}
	return NewEvent(requestID, EventDisconnectUser, attrs, now)
}

// NewError builds an ERROR frame.
func NewError(requestID string, code int, message string) Error {
	return Error{Type: TypeError, Id: NewID(), RequestId: requestID, ErrorCode: code, ErrorMessage: message}
}

// Encode marshals a frame; frames hold only strings and maps, so it cannot fail.
func Encode(frame any) []byte {
	b, err := json.Marshal(frame)
	if err != nil {
		panic(fmt.Sprintf("chat frame %T: %v", frame, err))
	}
	return b
}

// Request is a client frame. Members the action does not use are ignored.
type Request struct {
	Action     string            `json:"Action"`
	RequestId  string            `json:"RequestId"`
	Content    *string           `json:"Content"`
	Attributes map[string]string `json:"Attributes"`
	Id         string            `json:"Id"`
	Reason     string            `json:"Reason"`
	UserId     string            `json:"UserId"`
}

// ParseRequest decodes a client frame. The error text is fit to send back in an ERROR frame; with
// a member of the wrong type the rest is still decoded, so the error can name the RequestId.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return r, fmt.Errorf("%s must be of type %s", te.Field, te.Type)
		}
		return Request{}, fmt.Errorf("frame is not a JSON object")
	}
	return r, nil
}
