package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/chat/token"
	"glasscast/chat/wire"
	"glasscast/store"
)

// Backend is the control API's side of chat: it mints tokens and puts API events (SendEvent,
// DeleteMessage, DisconnectUser, room changes) into the rooms' stream, which every edge reads.
type Backend struct {
	relay  *wire.Relay
	sealer *token.Sealer
}

// NewBackend returns a Backend; it creates the chat stream and the token key if needed.
func NewBackend(ctx context.Context, st *store.Store, js jetstream.JetStream, streamMaxBytes int64, streamMaxAge time.Duration) (*Backend, error) {
	cfg := Config{StreamMaxBytes: streamMaxBytes, StreamMaxAge: streamMaxAge}
	cfg.defaults()
	relay, sealer, err := openShared(ctx, cfg, st, js)
	if err != nil {
		return nil, err
	}
	return &Backend{relay: relay, sealer: sealer}, nil
}

// openShared readies what both sides of chat share: the rooms' stream and the token key.
func openShared(ctx context.Context, cfg Config, st *store.Store, js jetstream.JetStream) (*wire.Relay, *token.Sealer, error) {
	relay := &wire.Relay{JS: js}
	if err := relay.Ensure(ctx, st.Replication, cfg.StreamMaxBytes, cfg.StreamMaxAge); err != nil {
		return nil, nil, err
	}
	key, err := st.ChatTokenKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := token.NewSealer(key)
	if err != nil {
		return nil, nil, err
	}
	return relay, sealer, nil
}

// MintToken seals claims into a chat token.
func (b *Backend) MintToken(ctx context.Context, c token.Claims) (string, error) {
	return b.sealer.Mint(c)
}

// SendEvent sends an application EVENT to the room.
func (b *Backend) SendEvent(ctx context.Context, roomID, name string, attrs map[string]string) (string, error) {
	ev := wire.NewEvent("", name, attrs, time.Now())
	return ev.Id, b.relay.Publish(ctx, roomID, wire.Envelope{Kind: wire.KindFrame, FrameType: wire.TypeEvent, FrameID: ev.Id, Data: wire.Encode(ev)})
}

// DeleteMessage sends aws:DELETE_MESSAGE to the room.
func (b *Backend) DeleteMessage(ctx context.Context, roomID, messageID, reason string) (string, error) {
	ev := wire.NewDeleteEvent("", messageID, reason, time.Now())
	return ev.Id, b.relay.Publish(ctx, roomID, wire.Envelope{Kind: wire.KindFrame, FrameType: wire.TypeEvent, FrameID: ev.Id, Data: wire.Encode(ev)})
}

// DisconnectUser sends aws:DISCONNECT_USER to the room; every edge then closes that user's
// connections with 1000.
func (b *Backend) DisconnectUser(ctx context.Context, roomID, userID, reason string) (string, error) {
	ev := wire.NewDisconnectEvent("", userID, reason, time.Now())
	return ev.Id, b.relay.Publish(ctx, roomID, wire.Envelope{Kind: wire.KindDisconnect, FrameType: wire.TypeEvent, FrameID: ev.Id,
		User: userID, Reason: reason, Data: wire.Encode(ev)})
}

// RoomUpdated gives edges the room's new limits and handler, in order with its frames.
func (b *Backend) RoomUpdated(ctx context.Context, r store.Room) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode room: %w", err)
	}
	return b.relay.Publish(ctx, r.ID, wire.Envelope{Kind: wire.KindRoomUpdated, Data: data})
}

// RoomDeleted disconnects the room's clients on every edge.
func (b *Backend) RoomDeleted(ctx context.Context, roomID string) error {
	return b.relay.Publish(ctx, roomID, wire.Envelope{Kind: wire.KindRoomDeleted})
}
