package control

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"glasscast/auth"
	"glasscast/store"
)

type reviewHandlerJSON struct {
	URI            *string `json:"uri,omitempty"`
	FallbackResult *string `json:"fallbackResult,omitempty"`
}

type roomJSON struct {
	Arn                             string             `json:"arn"`
	ID                              string             `json:"id"`
	Name                            string             `json:"name"`
	CreateTime                      string             `json:"createTime"`
	UpdateTime                      string             `json:"updateTime"`
	MaximumMessageRatePerSecond     *int               `json:"maximumMessageRatePerSecond,omitempty"`
	MaximumMessageLength            *int               `json:"maximumMessageLength,omitempty"`
	MessageReviewHandler            *reviewHandlerJSON `json:"messageReviewHandler,omitempty"`
	Tags                            map[string]string  `json:"tags"`
	LoggingConfigurationIdentifiers []string           `json:"loggingConfigurationIdentifiers"`
}

// roomOut renders a Room; summary drops the two maximum* members, as RoomSummary does.
func (s *Server) roomOut(rm store.Room, summary bool) roomJSON {
	out := roomJSON{Arn: s.arn("ivschat", "room", rm.ID), ID: rm.ID, Name: rm.Name, CreateTime: chatTime(rm.CreatedAt),
		UpdateTime: chatTime(rm.UpdatedAt), Tags: tagsOut(rm.Tags), LoggingConfigurationIdentifiers: []string{}}
	if !summary {
		out.MaximumMessageRatePerSecond, out.MaximumMessageLength = &rm.MaximumMessageRatePerSecond, &rm.MaximumMessageLength
	}
	if h := rm.MessageReviewHandler; h != nil {
		out.MessageReviewHandler = &reviewHandlerJSON{URI: &h.URI, FallbackResult: &h.FallbackResult}
	}
	for _, id := range rm.LoggingConfigurations {
		out.LoggingConfigurationIdentifiers = append(out.LoggingConfigurationIdentifiers, s.arn("ivschat", "logging-configuration", id))
	}
	return out
}

type roomInput struct {
	Identifier                      *string            `json:"identifier"`
	Name                            *string            `json:"name"`
	MaximumMessageRatePerSecond     *int               `json:"maximumMessageRatePerSecond"`
	MaximumMessageLength            *int               `json:"maximumMessageLength"`
	MessageReviewHandler            *reviewHandlerJSON `json:"messageReviewHandler"`
	LoggingConfigurationIdentifiers []string           `json:"loggingConfigurationIdentifiers"`
	Tags                            map[string]string  `json:"tags"`
}

// checkReviewURI accepts what IVS accepts (a Lambda ARN, mapped to a webhook by configuration)
// and, for a self-hosted webhook, an https URL, or an http URL on the loopback interface.
func checkReviewURI(v string) error {
	if v == "" || (len(v) <= 170 && reLambdaARN.MatchString(v)) {
		return nil
	}
	u, err := url.Parse(v)
	if err == nil && len(v) <= 2048 && u.Host != "" && u.User == nil {
		if u.Scheme == "https" {
			return nil
		}
		if h := u.Hostname(); u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost" || h == "::1") {
			return nil
		}
	}
	return chatInvalid("messageReviewHandler.uri", "1 validation error detected: Value '%s' at 'messageReviewHandler.uri' failed to satisfy constraint: Member must be empty, a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>), an https:// URL or an http:// URL on the loopback interface", v)
}

// applyRoomInput checks in and merges it into rm.
func (s *Server) applyRoomInput(rm *store.Room, in *roomInput) error {
	if err := checkName("name", in.Name); err != nil {
		return err
	}
	if in.Name != nil {
		rm.Name = *in.Name
	}
	if v := in.MaximumMessageRatePerSecond; v != nil {
		if *v < 1 || *v > 100 {
			return chatInvalid("maximumMessageRatePerSecond", "1 validation error detected: Value '%d' at 'maximumMessageRatePerSecond' failed to satisfy constraint: Member must have value between 1 and 100", *v)
		}
		rm.MaximumMessageRatePerSecond = *v
	}
	if v := in.MaximumMessageLength; v != nil {
		if *v < 1 || *v > 500 {
			return chatInvalid("maximumMessageLength", "1 validation error detected: Value '%d' at 'maximumMessageLength' failed to satisfy constraint: Member must have value between 1 and 500", *v)
		}
		rm.MaximumMessageLength = *v
	}
	if h := in.MessageReviewHandler; h != nil {
		if err := checkEnum("messageReviewHandler.fallbackResult", h.FallbackResult, "ALLOW", "DENY"); err != nil {
			return err
		}
		uri := ""
		if h.URI != nil {
			uri = *h.URI
		}
		if err := checkReviewURI(uri); err != nil {
			return err
		}
		fallback := "ALLOW"
		if h.FallbackResult != nil {
			fallback = *h.FallbackResult
		} else if rm.MessageReviewHandler != nil {
			fallback = rm.MessageReviewHandler.FallbackResult
		}
		rm.MessageReviewHandler = nil
		if uri != "" { // an empty uri removes the handler
			rm.MessageReviewHandler = &store.MessageReviewConfig{URI: uri, FallbackResult: fallback}
		}
	}
	if in.LoggingConfigurationIdentifiers != nil {
		if len(in.LoggingConfigurationIdentifiers) > 3 {
			return chatInvalid("loggingConfigurationIdentifiers", "1 validation error detected: Value at 'loggingConfigurationIdentifiers' failed to satisfy constraint: Member must have length less than or equal to 3")
		}
		ids := []string{}
		for _, v := range in.LoggingConfigurationIdentifiers {
			id, err := s.chatARN("loggingConfigurationIdentifiers", v, "logging-configuration")
			if err != nil {
				return err
			}
			if _, ok := s.store.ChatLogging.Get(id); !ok {
				return chatNotFound(v, "LOGGING_CONFIGURATION")
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		rm.LoggingConfigurations = ids
	}
	return nil
}

func (s *Server) createRoom(ctx context.Context, r *request) (any, error) {
	var in roomInput
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	rm := store.Room{ID: auth.NewID(), MaximumMessageRatePerSecond: 10, MaximumMessageLength: 500, Tags: in.Tags, CreatedAt: now, UpdatedAt: now}
	// s.refs: the logging configurations applyRoomInput found must still exist when the room is written.
	err := s.withRefs(func() error {
		if err := s.applyRoomInput(&rm, &in); err != nil {
			return err
		}
		if q := s.cfg.Quotas.ChatRooms; q > 0 && s.store.Rooms.Len() >= q {
			e := errQuota("the account may have at most %d rooms", q)
			e.Fields = map[string]any{"resourceId": "", "resourceType": "ROOM", "limit": q}
			return e
		}
		return s.store.Rooms.Create(ctx, rm.ID, rm)
	})
	if err != nil {
		return nil, err
	}
	return s.roomOut(rm, false), nil
}

func (s *Server) roomID(body []byte, field string) (string, error) {
	var in map[string]any
	if err := decode(body, &in); err != nil {
		return "", err
	}
	v, ok := in[field].(string)
	if in[field] == nil {
		return "", chatInvalid(field, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	if !ok {
		return "", chatInvalid(field, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be of type string", field)
	}
	id, err := s.chatARN(field, v, "room")
	if err != nil {
		return "", err
	}
	if _, ok := s.store.Rooms.Get(id); !ok {
		return "", chatNotFound(v, "ROOM")
	}
	return id, nil
}

func (s *Server) getRoom(ctx context.Context, r *request) (any, error) {
	id, err := s.roomID(r.body, "identifier")
	if err != nil {
		return nil, err
	}
	rm, ok := s.store.Rooms.Get(id)
	if !ok {
		return nil, chatNotFound(s.arn("ivschat", "room", id), "ROOM")
	}
	return s.roomOut(rm, false), nil
}

func (s *Server) updateRoom(ctx context.Context, r *request) (any, error) {
	id, err := s.roomID(r.body, "identifier")
	if err != nil {
		return nil, err
	}
	var in roomInput
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	// s.refs: the logging configurations applyRoomInput found must still exist when the room
	// is written. Edges are told after it is released.
	var rm store.Room
	err = s.withRefs(func() error {
		rm, err = s.store.Rooms.Update(ctx, id, func(rm *store.Room) error {
			if err := s.applyRoomInput(rm, &in); err != nil {
				return err
			}
			rm.UpdatedAt = time.Now().UTC()
			return nil
		})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, chatNotFound(s.arn("ivschat", "room", id), "ROOM")
	}
	if err != nil {
		return nil, err
	}
	if b, err := s.chatBackend(); err == nil {
		if err := b.RoomUpdated(ctx, rm); err != nil {
			s.log.Warn("chat: telling edges of a room update failed", "room", id, "err", err)
		}
	}
	return s.roomOut(rm, false), nil
}

func (s *Server) deleteRoom(ctx context.Context, r *request) (any, error) {
	id, err := s.roomID(r.body, "identifier")
	if err != nil {
		return nil, err
	}
	if err := s.store.Rooms.Delete(ctx, id); errors.Is(err, store.ErrNotFound) {
		return nil, chatNotFound(s.arn("ivschat", "room", id), "ROOM")
	} else if err != nil {
		return nil, err
	}
	if b, err := s.chatBackend(); err == nil {
		if err := b.RoomDeleted(ctx, id); err != nil {
			s.log.Warn("chat: telling edges of a room deletion failed", "room", id, "err", err)
		}
	}
	return noContent{}, nil
}

func (s *Server) listRooms(ctx context.Context, r *request) (any, error) {
	var in struct {
		Name                           *string `json:"name"`
		NextToken                      *string `json:"nextToken"`
		MaxResults                     *int    `json:"maxResults"`
		MessageReviewHandlerUri        *string `json:"messageReviewHandlerUri"`
		LoggingConfigurationIdentifier *string `json:"loggingConfigurationIdentifier"`
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	max, err := checkMaxResults(in.MaxResults, 50)
	if err != nil {
		return nil, err
	}
	logID := ""
	if v := in.LoggingConfigurationIdentifier; v != nil {
		if logID, err = s.chatARN("loggingConfigurationIdentifier", *v, "logging-configuration"); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
				logID = "\x00" // another deployment's ARN matches no room
			} else {
				return nil, err
			}
		}
	}
	if v := in.MessageReviewHandlerUri; v != nil && len(*v) > 170 {
		return nil, chatInvalid("messageReviewHandlerUri", "1 validation error detected: Value at 'messageReviewHandlerUri' failed to satisfy constraint: Member must have length less than or equal to 170")
	}
	// Newest first, as IVS Chat lists; the key keeps pages stable while rooms come and go.
	items := s.store.Rooms.List()
	keyed := make([]store.Item[store.Room], 0, len(items))
	for _, it := range items {
		it.Key = sortKeyNewestFirst(it.Value.UpdatedAt, it.Value.ID)
		keyed = append(keyed, it)
	}
	slices.SortFunc(keyed, func(a, b store.Item[store.Room]) int { return strings.Compare(a.Key, b.Key) })
	rooms, next, err := page(keyed, in.NextToken, max, func(rm store.Room) bool {
		if in.Name != nil && *in.Name != "" && rm.Name != *in.Name {
			return false
		}
		if in.MessageReviewHandlerUri != nil && *in.MessageReviewHandlerUri != "" &&
			(rm.MessageReviewHandler == nil || rm.MessageReviewHandler.URI != *in.MessageReviewHandlerUri) {
			return false
		}
		return logID == "" || slices.Contains(rm.LoggingConfigurations, logID)
	})
	if err != nil {
		return nil, err
	}
	out := make([]roomJSON, 0, len(rooms))
	for _, rm := range rooms {
		out = append(out, s.roomOut(rm, true))
	}
	return listResponse("rooms", out, next), nil
}

// sortKeyNewestFirst orders by time descending, then ID, as strings.
func sortKeyNewestFirst(t time.Time, id string) string {
	const far = 1 << 62
	return padInt(far-t.UnixNano()) + "." + id
}

func padInt(n int64) string {
	s := make([]byte, 20)
	for i := len(s) - 1; i >= 0; i-- {
		s[i] = byte('0' + n%10)
		n /= 10
	}
	return string(s)
}
