package control

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"glasscast/bus"
	"glasscast/chat"
	"glasscast/store"
)

func chatServer(tb testing.TB) (*Server, context.Context) {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: tb.TempDir(), Name: "chat-fuzz"}, log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(func() { cancel(); b.Close() })
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		tb.Fatal(err)
	}
	be, err := chat.NewBackend(ctx, st, b.JS, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	srv := New(Config{Region: "us-east-1", Account: "000000000000", Chat: be,
		Quotas: Quotas{ChatRooms: 20, ChatLoggingConfigurations: 5}}, st, nil, nil, log)
	return srv, ctx
}

// FuzzChatOperations feeds arbitrary JSON bodies, query strings and resource ARNs to every IVS
// Chat operation against a real store and NATS: each must answer with a result or an AWS-shaped
// client error, never a panic or an internal error.
func FuzzChatOperations(f *testing.F) {
	room := `"arn:aws:ivschat:us-east-1:000000000000:room/abcdefABCDEF"`
	seeds := []string{
		`{}`, `null`, `[`, `{"name":"r","maximumMessageLength":500,"maximumMessageRatePerSecond":1e9}`,
		`{"messageReviewHandler":{"uri":"arn:aws:lambda:us-east-1:123456789012:function:f","fallbackResult":"DENY"}}`,
		`{"messageReviewHandler":{"uri":"http://127.0.0.1:1/x"}}`, `{"loggingConfigurationIdentifiers":["a","b","c","d"]}`,
		`{"identifier":` + room + `}`, `{"roomIdentifier":` + room + `,"userId":"u","capabilities":["SEND_MESSAGE"],"attributes":{"a":"b"}}`,
		`{"roomIdentifier":` + room + `,"eventName":"e","attributes":{"a":1}}`, `{"roomIdentifier":` + room + `,"id":"abcdefABCDEF"}`,
		`{"destinationConfiguration":{"s3":{"bucketName":"b-b"},"firehose":{"deliveryStreamName":"x"}}}`,
		`{"destinationConfiguration":{"cloudWatchLogs":{"logGroupName":"../../etc"}}}`, `{"maxResults":0,"nextToken":"%%"}`,
		`{"identifier":7}`, `{"tags":{"aws:x":"y"}}`, `{"roomIdentifier":"arn:aws:ivschat:us-east-1:000000000000:room/x","userId":"\xff"}`,
	}
	for _, s := range seeds {
		f.Add(s, "tagKeys=a&tagKeys=", "arn:aws:ivschat:us-east-1:000000000000:room/abcdefABCDEF")
	}
	srv, ctx := chatServer(f)
	// One real room, so the seeds reach past the lookup.
	if _, err := srv.createRoom(ctx, &request{body: []byte(`{}`)}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, query, resARN string) {
		for name, op := range srv.ivschat {
			q := map[string][]string{}
			for _, kv := range splitQuery(query) {
				q[kv[0]] = append(q[kv[0]], kv[1])
			}
			r := &request{body: []byte(body), query: q, resARN: resARN, baseURL: "http://h", host: "h"}
			_, err := op(ctx, r)
			if err == nil {
				continue
			}
			ae := asAPIError(err)
			if ae.Status >= 500 {
				t.Fatalf("%s with body %q: internal error %v", name, body, err)
			}
			if ae.Code == "ValidationException" && ae.Fields["reason"] == nil {
				t.Fatalf("%s: ValidationException without reason: %v", name, err)
			}
		}
	})
}

// TestChatRequiredFields covers what the SDKs check before sending, so only raw callers reach.
func TestChatRequiredFields(t *testing.T) {
	srv, ctx := chatServer(t)
	for op, body := range map[string]string{
		"POST /CreateLoggingConfiguration": `{}`,
		"POST /GetRoom":                    `{}`,
		"POST /CreateChatToken":            `{"roomIdentifier":null}`,
		"POST /SendEvent":                  `{"roomIdentifier":"arn:aws:ivschat:us-east-1:000000000000:room/abcdefABCDEF"}`,
		"POST /DeleteLoggingConfiguration": `{"identifier":""}`,
	} {
		_, err := srv.ivschat[op](ctx, &request{body: []byte(body)})
		ae := asAPIError(err)
		if ae.Status != http.StatusBadRequest && ae.Status != http.StatusNotFound {
			t.Fatalf("%s %s: %v", op, body, err)
		}
		if ae.Code == "ValidationException" && ae.Fields["reason"] == nil {
			t.Fatalf("%s: no reason in %v", op, ae)
		}
	}
}

// TestChatThrottle: with quotas.chatThrottle, calls past an operation's TPS quota get
// ThrottlingException with the limit.
func TestChatThrottle(t *testing.T) {
	srv, ctx := chatServer(t)
	srv.cfg.Quotas.ChatThrottle = true
	srv.ivschat = srv.ivschatRoutes()
	throttled := 0
	for i := 0; i < 8; i++ {
		_, err := srv.ivschat["POST /ListRooms"](ctx, &request{body: []byte(`{}`)})
		if err != nil {
			ae := asAPIError(err)
			if ae.Code != "ThrottlingException" || ae.Status != http.StatusTooManyRequests || ae.Fields["limit"] != 5 {
				t.Fatalf("call %d: %v", i, err)
			}
			throttled++
		}
	}
	if throttled < 3 {
		t.Fatalf("8 ListRooms calls at once against 5 TPS: %d throttled", throttled)
	}
}
