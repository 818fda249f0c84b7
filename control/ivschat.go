package control

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"glasscast/chat/token"
	"glasscast/store"
)

// ChatBackend is what the IVS Chat operations need beyond the store: minting tokens and reaching
// the rooms' live connections on every edge. Package chat implements it.
type ChatBackend interface {
	MintToken(ctx context.Context, c token.Claims) (string, error)
	// SendEvent, DeleteMessage and DisconnectUser return the Id of the EVENT frame they sent.
	SendEvent(ctx context.Context, roomID, name string, attrs map[string]string) (string, error)
	DeleteMessage(ctx context.Context, roomID, messageID, reason string) (string, error)
	DisconnectUser(ctx context.Context, roomID, userID, reason string) (string, error)
	// RoomUpdated and RoomDeleted tell the edges, so live rooms apply new limits or close.
	RoomUpdated(ctx context.Context, r store.Room) error
	RoomDeleted(ctx context.Context, roomID string) error
}

var (
	reLambdaARN = regexp.MustCompile(`^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+$`)
	reMessageID = regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)
	reLogGroup  = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`)
	reDelivery  = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
)

func (s *Server) ivschatRoutes() map[string]op {
	routes := map[string]op{
		"POST /CreateRoom":                 s.createRoom,
		"POST /GetRoom":                    s.getRoom,
		"POST /UpdateRoom":                 s.updateRoom,
		"POST /DeleteRoom":                 s.deleteRoom,
		"POST /ListRooms":                  s.listRooms,
		"POST /CreateChatToken":            s.createChatToken,
		"POST /SendEvent":                  s.sendEvent,
		"POST /DeleteMessage":              s.deleteMessage,
		"POST /DisconnectUser":             s.disconnectUser,
		"POST /CreateLoggingConfiguration": s.createLoggingConfiguration,
		"POST /GetLoggingConfiguration":    s.getLoggingConfiguration,
		"POST /UpdateLoggingConfiguration": s.updateLoggingConfiguration,
		"POST /DeleteLoggingConfiguration": s.deleteLoggingConfiguration,
		"POST /ListLoggingConfigurations":  s.listLoggingConfigurations,
		"POST /tags":                       s.chatTagResource,
		"DELETE /tags":                     s.chatUntagResource,
		"GET /tags":                        s.chatListTagsForResource,
	}
	for k, fn := range routes {
		if s.cfg.Quotas.ChatThrottle {
			fn = chatThrottle(k, fn)
		}
		routes[k] = chatErrors(fn)
	}
	return routes
}

// chatTPS are IVS Chat's default transactions-per-second quotas per operation.
func chatTPS(route string) int {
	switch {
	case strings.Contains(route, "/tags"):
		return 10
	case strings.HasSuffix(route, "ChatToken"):
		return 200
	case strings.HasSuffix(route, "Event"), strings.HasSuffix(route, "Message"), strings.HasSuffix(route, "User"):
		return 100
	case strings.Contains(route, "Room"):
		return 5
	}
	return 3 // logging configurations
}

// chatThrottle answers ThrottlingException past the operation's TPS quota, as IVS Chat does.
func chatThrottle(route string, fn op) op {
	tps := chatTPS(route)
	lim := rate.NewLimiter(rate.Limit(tps), tps)
	return func(ctx context.Context, r *request) (any, error) {
		if !lim.Allow() {
			e := errThrottled("rate exceeded: %s allows %d requests per second", route, tps)
			e.Fields = map[string]any{"resourceId": "", "resourceType": "ROOM", "limit": tps}
			return nil, e
		}
		return fn(ctx, r)
	}
}

// chatErrors gives validation errors the members IVS Chat's ValidationException has (reason,
// fieldList), which IVS's does not: the shared validation helpers produce IVS's shape.
func chatErrors(fn op) op {
	return func(ctx context.Context, r *request) (any, error) {
		out, err := fn(ctx, r)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "ValidationException" && ae.Fields == nil {
			field := ""
			if i := strings.Index(ae.Message, " at '"); i >= 0 {
				field, _, _ = strings.Cut(ae.Message[i+5:], "'")
			}
			ae = &apiError{Status: ae.Status, Code: ae.Code, Message: ae.Message, Fields: map[string]any{"reason": "OTHER"}}
			if field != "" {
				ae.Fields = map[string]any{"reason": "FIELD_VALIDATION_FAILED",
					"fieldList": []map[string]string{{"name": field, "message": ae.Message}}}
			}
			return nil, ae
		}
		return out, err
	}
}

func chatInvalid(field, format string, a ...any) *apiError {
	e := errValidation(format, a...)
	e.Fields = map[string]any{"reason": "FIELD_VALIDATION_FAILED",
		"fieldList": []map[string]string{{"name": field, "message": e.Message}}}
	return e
}

func chatNotFound(id, typ string) *apiError {
	e := errNotFound("%s %s not found", strings.ToLower(strings.ReplaceAll(typ, "_", " ")), id)
	e.Fields = map[string]any{"resourceId": id, "resourceType": typ}
	return e
}

func (s *Server) chatBackend() (ChatBackend, error) {
	if s.cfg.Chat == nil {
		return nil, &apiError{Status: http.StatusInternalServerError, Code: "InternalServerException", Message: "chat is not running in this deployment"}
	}
	return s.cfg.Chat, nil
}

// chatARN parses an IVS Chat identifier, which must be an ARN of this deployment.
func (s *Server) chatARN(field, v, typ string) (string, error) {
	if utf8.RuneCountInString(v) < 1 || len(v) > 128 {
		return "", chatInvalid(field, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length between 1 and 128", v, field)
	}
	a, ok := parseARN(v)
	if !ok || a.Service != "ivschat" || a.Type != typ {
		return "", chatInvalid(field, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:%s/[a-zA-Z0-9-]+$", v, field, typ)
	}
	if !s.ownARN(a) {
		return "", chatNotFound(v, resourceType(typ))
	}
	return a.ID, nil
}

func resourceType(typ string) string {
	if typ == "room" {
		return "ROOM"
	}
	return "LOGGING_CONFIGURATION"
}

func chatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
