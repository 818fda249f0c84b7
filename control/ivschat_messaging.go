package control

import (
	"context"
	"time"
	"unicode/utf8"

	"glasscast/chat/token"
)

// attributesBytes is the size IVS Chat's 1 KB limit on attributes counts: keys plus values.
func attributesBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

func checkAttributes(field string, m map[string]string) error {
	if attributesBytes(m) > 1024 {
		return chatInvalid(field, "1 validation error detected: Value at '%s' failed to satisfy constraint: attributes may total at most 1 KB", field)
	}
	return nil
}

func checkLength(field, v string, min, max int) error {
	if n := utf8.RuneCountInString(v); n < min || n > max || !utf8.ValidString(v) {
		return chatInvalid(field, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length between %d and %d", field, min, max)
	}
	return nil
}

func (s *Server) createChatToken(ctx context.Context, r *request) (any, error) {
	var in struct {
		RoomIdentifier           *string           `json:"roomIdentifier"`
		UserId                   *string           `json:"userId"`
		Capabilities             []string          `json:"capabilities"`
		SessionDurationInMinutes *int              `json:"sessionDurationInMinutes"`
		Attributes               map[string]string `json:"attributes"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	roomID, err := s.roomID(r.body, "roomIdentifier")
	if err != nil {
		return nil, err
	}
	if err := requiredLength("userId", in.UserId, 1, 128); err != nil {
		return nil, err
	}
	for i := range in.Capabilities {
		if err := checkEnum("capabilities", &in.Capabilities[i], token.SendMessage, token.DeleteMessage, token.DisconnectUser); err != nil {
			return nil, err
		}
	}
	minutes := 60
	if v := in.SessionDurationInMinutes; v != nil {
		if *v < 1 || *v > 180 {
			return nil, chatInvalid("sessionDurationInMinutes", "1 validation error detected: Value '%d' at 'sessionDurationInMinutes' failed to satisfy constraint: Member must have value between 1 and 180", *v)
		}
		minutes = *v
	}
	if err := checkAttributes("attributes", in.Attributes); err != nil {
		return nil, err
	}
	b, err := s.chatBackend()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	session := now.Add(time.Duration(minutes) * time.Minute)
	// A token can be presented for an hour, or until the session ends if that is sooner; the
	// session then lasts its full duration from issue, as IVS Chat's answers show.
	expires := now.Add(time.Hour)
	if session.Before(expires) {
		expires = session
	}
	tok, err := b.MintToken(ctx, token.Claims{RoomID: roomID, UserID: *in.UserId, Attributes: in.Attributes,
		Capabilities: in.Capabilities, TokenExpires: expires, SessionExpires: session})
	if err != nil {
		return nil, err
	}
	return map[string]any{"token": tok, "tokenExpirationTime": chatTime(expires), "sessionExpirationTime": chatTime(session)}, nil
}

func (s *Server) sendEvent(ctx context.Context, r *request) (any, error) {
	var in struct {
		EventName  *string           `json:"eventName"`
		Attributes map[string]string `json:"attributes"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	roomID, err := s.roomID(r.body, "roomIdentifier")
	if err != nil {
		return nil, err
	}
	if err := requiredLength("eventName", in.EventName, 1, 100); err != nil {
		return nil, err
	}
	if err := checkAttributes("attributes", in.Attributes); err != nil {
		return nil, err
	}
	b, err := s.chatBackend()
	if err != nil {
		return nil, err
	}
	id, err := b.SendEvent(ctx, roomID, *in.EventName, in.Attributes)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": id}, nil
}

// moderationInput is what DeleteMessage and DisconnectUser take besides the room.
type moderationInput struct {
	Id     *string `json:"id"`
	UserId *string `json:"userId"`
	Reason *string `json:"reason"`
}

// moderation reads a moderation request: its room, its members, the optional reason (1 to 256
// characters when given) and the backend that carries it out.
func (s *Server) moderation(r *request) (string, moderationInput, string, ChatBackend, error) {
	var in moderationInput
	if err := decode(r.body, &in); err != nil {
		return "", in, "", nil, err
	}
	roomID, err := s.roomID(r.body, "roomIdentifier")
	if err != nil {
		return "", in, "", nil, err
	}
	reason := ""
	if in.Reason != nil {
		if err := checkLength("reason", *in.Reason, 1, 256); err != nil {
			return "", in, "", nil, err
		}
		reason = *in.Reason
	}
	b, err := s.chatBackend()
	return roomID, in, reason, b, err
}

// requiredLength checks a required string member's presence and length in code points.
func requiredLength(field string, v *string, min, max int) error {
	if v == nil {
		return chatInvalid(field, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	return checkLength(field, *v, min, max)
}

func (s *Server) deleteMessage(ctx context.Context, r *request) (any, error) {
	roomID, in, reason, b, err := s.moderation(r)
	if err != nil {
		return nil, err
	}
	if in.Id == nil || !reMessageID.MatchString(*in.Id) {
		return nil, chatInvalid("id", "1 validation error detected: Value at 'id' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9]{12}$")
	}
	id, err := b.DeleteMessage(ctx, roomID, *in.Id, reason)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": id}, nil
}

func (s *Server) disconnectUser(ctx context.Context, r *request) (any, error) {
	roomID, in, reason, b, err := s.moderation(r)
	if err != nil {
		return nil, err
	}
	if err := requiredLength("userId", in.UserId, 1, 128); err != nil {
		return nil, err
	}
	if _, err := b.DisconnectUser(ctx, roomID, *in.UserId, reason); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}
