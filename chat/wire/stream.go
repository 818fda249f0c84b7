package wire

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// Rooms' frames travel on one JetStream stream, a subject per room. The stream gives every room
// one order that all edges see (core NATS orders only per publisher) and lets the chat logger
// read the same frames later, so an S3 outage loses nothing the stream still holds.
const (
	StreamName    = "GLASSCAST_CHAT"
	subjectPrefix = "glasscast.chat.room."
)

// Subject is the subject of a room's frames.
func Subject(roomID string) string { return subjectPrefix + roomID }

// RoomOf returns the room ID of a subject.
func RoomOf(subject string) string {
	if len(subject) > len(subjectPrefix) {
		return subject[len(subjectPrefix):]
	}
	return ""
}

// Kinds of envelope.
const (
	// KindFrame carries a MESSAGE or EVENT frame for every client of the room.
	KindFrame = "frame"
	// KindDisconnect carries an aws:DISCONNECT_USER event; after it, every connection of User closes.
	KindDisconnect = "disconnect"
	// KindRoomDeleted closes every connection of the room.
	KindRoomDeleted = "room-deleted"
	// KindRoomUpdated carries the room's new settings (store.Room JSON), in order with frames.
	KindRoomUpdated = "room-updated"
)

// Envelope is one entry of a room's stream.
type Envelope struct {
	Kind      string
	FrameType string // MESSAGE or EVENT, for frames and disconnects
	FrameID   string
	User      string // for KindDisconnect
	Reason    string
	Data      []byte // the frame's JSON, exactly as clients get it; or the room for KindRoomUpdated
}

const (
	hKind   = "Gc-Kind"
	hType   = "Gc-Type"
	hID     = "Gc-Id"
	hUser   = "Gc-User"
	hReason = "Gc-Reason"
)

// Msg turns an envelope into a NATS message for a room.
func (e Envelope) Msg(roomID string) *nats.Msg {
	m := nats.NewMsg(Subject(roomID))
	m.Header.Set(hKind, e.Kind)
	for k, v := range map[string]string{hType: e.FrameType, hID: e.FrameID, hUser: e.User, hReason: e.Reason} {
		if v != "" {
			m.Header.Set(k, v)
		}
	}
	m.Data = e.Data
	return m
}

// Open reads an envelope from a stream message's headers and data.
func Open(h nats.Header, data []byte) Envelope {
	return Envelope{Kind: h.Get(hKind), FrameType: h.Get(hType), FrameID: h.Get(hID), User: h.Get(hUser), Reason: h.Get(hReason), Data: data}
}

// StreamConfig is the chat stream. Frames are kept an hour (bounded in bytes) so the logger can
// catch up after an outage; edges read only new frames.
func StreamConfig(maxBytes int64, maxAge time.Duration) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "IVS Chat room frames: fan-out to edges and input of chat logging",
		Subjects:    []string{subjectPrefix + "*"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		MaxMsgSize:  64 << 10,
		Duplicates:  time.Minute,
	}
}

// Relay publishes envelopes to rooms.
type Relay struct{ JS jetstream.JetStream }

// Ensure creates or updates the chat stream with repl's replicas and placement.
func (r *Relay) Ensure(ctx context.Context, repl bus.Replication, maxBytes int64, maxAge time.Duration) error {
	if _, err := repl.CreateOrUpdateStream(ctx, r.JS, StreamConfig(maxBytes, maxAge)); err != nil {
		return fmt.Errorf("chat stream: %w", err)
	}
	return nil
}

// Publish appends an envelope to a room's stream and waits for the stream to store it. The frame
// Id doubles as the message ID, so a retried publish is not stored twice.
func (r *Relay) Publish(ctx context.Context, roomID string, e Envelope) error {
	opts := []jetstream.PublishOpt{}
	if e.FrameID != "" {
		opts = append(opts, jetstream.WithMsgID(e.FrameID))
	}
	if _, err := r.JS.PublishMsg(ctx, e.Msg(roomID), opts...); err != nil {
		return fmt.Errorf("publish to room %s: %w", roomID, err)
	}
	return nil
}
