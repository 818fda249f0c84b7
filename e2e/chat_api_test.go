package e2e

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
)

// TestChatAPI drives every IVS Chat control-plane operation and its errors through the real
// aws-sdk-go-v2 ivschat client, on the same endpoint and keys as the IVS API.
func TestChatAPI(t *testing.T) {
	n := startChatServe(t, "--quotas-chat-logging-configurations", "4")
	c := n.chatClient()
	ctx := ctxT(t, 3*time.Minute)
	reRoomARN := regexp.MustCompile(`^arn:aws:ivschat:us-east-1:000000000000:room/[a-zA-Z0-9]{12}$`)

	// --- rooms: defaults, fields, limits ---
	created, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String("my-stream-chat"), Tags: map[string]string{"team": "live"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reRoomARN.MatchString(*created.Arn) || *created.Id != roomID(*created.Arn) || *created.Name != "my-stream-chat" ||
		*created.MaximumMessageLength != 500 || *created.MaximumMessageRatePerSecond != 10 || created.Tags["team"] != "live" ||
		created.MessageReviewHandler != nil || len(created.LoggingConfigurationIdentifiers) != 0 || created.CreateTime == nil || created.UpdateTime == nil {
		t.Fatalf("CreateRoom defaults: %+v", created)
	}
	room := *created.Arn
	got, err := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: aws.String(room)})
	if err != nil || *got.Name != "my-stream-chat" || !got.CreateTime.Equal(*created.CreateTime) {
		t.Fatalf("GetRoom: %+v %v", got, err)
	}

	validation := func(err error, field string) {
		t.Helper()
		var ve *chattypes.ValidationException
		if !errors.As(err, &ve) {
			t.Fatalf("want ValidationException for %s, got %v", field, err)
		}
		if ve.Reason != chattypes.ValidationExceptionReasonFieldValidationFailed || len(ve.FieldList) != 1 || *ve.FieldList[0].Name != field {
			t.Fatalf("ValidationException for %s: reason %q fields %+v (%s)", field, ve.Reason, ve.FieldList, *ve.Message)
		}
	}
	// The server enforces the limits, since the SDKs send any number.
	for _, tc := range []struct {
		in    ivschat.CreateRoomInput
		field string
	}{
		{ivschat.CreateRoomInput{MaximumMessageLength: aws.Int32(501)}, "maximumMessageLength"},
		{ivschat.CreateRoomInput{MaximumMessageLength: aws.Int32(0)}, "maximumMessageLength"},
		{ivschat.CreateRoomInput{MaximumMessageRatePerSecond: aws.Int32(101)}, "maximumMessageRatePerSecond"},
		{ivschat.CreateRoomInput{Name: aws.String("no spaces")}, "name"},
		{ivschat.CreateRoomInput{Name: aws.String(strings.Repeat("n", 129))}, "name"},
		{ivschat.CreateRoomInput{MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String("http://example.com/review")}}, "messageReviewHandler.uri"},
		{ivschat.CreateRoomInput{MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f"), FallbackResult: "MAYBE"}}, "messageReviewHandler.fallbackResult"},
		{ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{"nope"}}, "loggingConfigurationIdentifiers"},
		{ivschat.CreateRoomInput{Tags: map[string]string{"aws:x": "y"}}, "tags"},
	} {
		_, err := c.CreateRoom(ctx, &tc.in)
		validation(err, tc.field)
	}
	var nf *chattypes.ResourceNotFoundException
	missing := "arn:aws:ivschat:us-east-1:000000000000:room/AAAAAAAAAAAA"
	if _, err := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: aws.String(missing)}); !errors.As(err, &nf) || *nf.ResourceId != missing || nf.ResourceType != chattypes.ResourceTypeRoom {
		t.Fatalf("GetRoom missing: %v", err)
	}
	_, err = c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: aws.String("AAAAAAAAAAAA")})
	validation(err, "identifier")

	// --- logging configurations ---
	mkLog := func(name string, d chattypes.DestinationConfiguration) *ivschat.CreateLoggingConfigurationOutput {
		t.Helper()
		out, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{Name: aws.String(name), DestinationConfiguration: d})
		if err != nil {
			t.Fatalf("CreateLoggingConfiguration %s: %v", name, err)
		}
		if out.State != chattypes.CreateLoggingConfigurationStateActive || !strings.Contains(*out.Arn, ":logging-configuration/") {
			t.Fatalf("CreateLoggingConfiguration: %+v", out)
		}
		return out
	}
	s3cfg := mkLog("to-s3", &chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("chat-logs")}})
	cwcfg := mkLog("to-cw", &chattypes.DestinationConfigurationMemberCloudWatchLogs{Value: chattypes.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("/aws/ivschat/logs")}})
	fhcfg := mkLog("to-fh", &chattypes.DestinationConfigurationMemberFirehose{Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat.stream")}})
	mkLog("fourth", &chattypes.DestinationConfigurationMemberFirehose{Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("x")}})
	var quota *chattypes.ServiceQuotaExceededException
	if _, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &chattypes.DestinationConfigurationMemberFirehose{Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("y")}}}); !errors.As(err, &quota) || quota.Limit != 4 {
		t.Fatalf("logging configuration quota: %v", err)
	}
	_, err = c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("Bad_Bucket")}}})
	validation(err, "destinationConfiguration.s3.bucketName")

	gl, err := c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: cwcfg.Arn})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := gl.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberCloudWatchLogs); !ok || *d.Value.LogGroupName != "/aws/ivschat/logs" || *gl.Name != "to-cw" {
		t.Fatalf("GetLoggingConfiguration: %+v", gl)
	}
	ul, err := c.UpdateLoggingConfiguration(ctx, &ivschat.UpdateLoggingConfigurationInput{Identifier: fhcfg.Arn, Name: aws.String("renamed"),
		DestinationConfiguration: &chattypes.DestinationConfigurationMemberFirehose{Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat.stream2")}}})
	if err != nil || *ul.Name != "renamed" {
		t.Fatalf("UpdateLoggingConfiguration: %+v %v", ul, err)
	}
	pageSizes := []int{}
	var next *string
	for {
		lp, err := c.ListLoggingConfigurations(ctx, &ivschat.ListLoggingConfigurationsInput{MaxResults: aws.Int32(3), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		pageSizes = append(pageSizes, len(lp.LoggingConfigurations))
		if next = lp.NextToken; next == nil {
			break
		}
	}
	if fmt.Sprint(pageSizes) != "[3 1]" {
		t.Fatalf("ListLoggingConfigurations pages %v", pageSizes)
	}
	_, err = c.ListLoggingConfigurations(ctx, &ivschat.ListLoggingConfigurationsInput{MaxResults: aws.Int32(51)})
	wantCode(t, err, "ValidationException")

	// --- UpdateRoom, ListRooms filters and pagination ---
	ur, err := c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: aws.String(room), MaximumMessageLength: aws.Int32(100),
		LoggingConfigurationIdentifiers: []string{*s3cfg.Arn, *cwcfg.Arn},
		MessageReviewHandler:            &chattypes.MessageReviewHandler{Uri: aws.String("arn:aws:lambda:us-east-1:123456789012:function:review")}})
	if err != nil {
		t.Fatal(err)
	}
	if *ur.MaximumMessageLength != 100 || *ur.MaximumMessageRatePerSecond != 10 || len(ur.LoggingConfigurationIdentifiers) != 2 ||
		*ur.MessageReviewHandler.Uri != "arn:aws:lambda:us-east-1:123456789012:function:review" || ur.MessageReviewHandler.FallbackResult != chattypes.FallbackResultAllow ||
		!ur.UpdateTime.After(*created.UpdateTime) {
		t.Fatalf("UpdateRoom: %+v", ur)
	}
	_, err = c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: aws.String(room), LoggingConfigurationIdentifiers: []string{*s3cfg.Arn, *cwcfg.Arn, *fhcfg.Arn, *fhcfg.Arn}})
	validation(err, "loggingConfigurationIdentifiers")
	// A logging configuration in use cannot be deleted.
	_, err = c.DeleteLoggingConfiguration(ctx, &ivschat.DeleteLoggingConfigurationInput{Identifier: cwcfg.Arn})
	wantCode(t, err, "ConflictException")
	// An empty uri removes the handler.
	ur, err = c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: aws.String(room), MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String("")}})
	if err != nil || ur.MessageReviewHandler != nil {
		t.Fatalf("removing the review handler: %+v %v", ur, err)
	}
	for i := 0; i < 4; i++ {
		chatRoom(t, ctx, c, &ivschat.CreateRoomInput{Name: aws.String(fmt.Sprintf("page-%d", i))})
	}
	var names []string
	next = nil
	for {
		lr, err := c.ListRooms(ctx, &ivschat.ListRoomsInput{MaxResults: aws.Int32(2), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range lr.Rooms {
			names = append(names, *r.Name)
		}
		if next = lr.NextToken; next == nil {
			break
		}
	}
	// Newest update first: the updated room is older than the four page rooms.
	if strings.Join(names, ",") != "page-3,page-2,page-1,page-0,my-stream-chat" {
		t.Fatalf("ListRooms order %v", names)
	}
	for _, tc := range []struct {
		in   ivschat.ListRoomsInput
		want int
	}{
		{ivschat.ListRoomsInput{Name: aws.String("page-1")}, 1},
		{ivschat.ListRoomsInput{LoggingConfigurationIdentifier: cwcfg.Arn}, 1},
		{ivschat.ListRoomsInput{LoggingConfigurationIdentifier: fhcfg.Arn}, 0},
		{ivschat.ListRoomsInput{MessageReviewHandlerUri: aws.String("arn:aws:lambda:us-east-1:123456789012:function:review")}, 0},
	} {
		lr, err := c.ListRooms(ctx, &tc.in)
		if err != nil || len(lr.Rooms) != tc.want {
			t.Fatalf("ListRooms %+v: %d rooms, %v", tc.in, len(lr.Rooms), err)
		}
	}
	_, err = c.ListRooms(ctx, &ivschat.ListRoomsInput{NextToken: aws.String("!!")})
	wantCode(t, err, "ValidationException")

	// --- tokens ---
	tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("ünïcode user"),
		Capabilities: []chattypes.ChatTokenCapability{"SEND_MESSAGE"}, SessionDurationInMinutes: aws.Int32(180), Attributes: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9._~-]+$`).MatchString(*tok.Token) {
		t.Fatalf("token %q is not subprotocol-safe", *tok.Token)
	}
	now := time.Now()
	if d := tok.TokenExpirationTime.Sub(now); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("tokenExpirationTime in %v", d)
	}
	if d := tok.SessionExpirationTime.Sub(now); d < 179*time.Minute || d > 181*time.Minute {
		t.Fatalf("sessionExpirationTime in %v", d)
	}
	short, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("u"), SessionDurationInMinutes: aws.Int32(5)})
	if err != nil || !short.TokenExpirationTime.Equal(*short.SessionExpirationTime) {
		t.Fatalf("5-minute session: %+v %v", short, err)
	}
	for _, tc := range []struct {
		in    ivschat.CreateChatTokenInput
		field string
	}{
		{ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String(strings.Repeat("u", 129))}, "userId"},
		{ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("")}, "userId"},
		{ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("u"), SessionDurationInMinutes: aws.Int32(181)}, "sessionDurationInMinutes"},
		{ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("u"), Capabilities: []chattypes.ChatTokenCapability{"FLY"}}, "capabilities"},
		{ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("u"), Attributes: map[string]string{"big": strings.Repeat("x", 1100)}}, "attributes"},
	} {
		_, err := c.CreateChatToken(ctx, &tc.in)
		validation(err, tc.field)
	}
	_, err = c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(missing), UserId: aws.String("u")})
	wantCode(t, err, "ResourceNotFoundException")

	// --- events and moderation (delivery is checked in TestChatRelay) ---
	ev, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: aws.String(room), EventName: aws.String("app:poll")})
	if err != nil || !regexp.MustCompile(`^[a-zA-Z0-9]{12}$`).MatchString(*ev.Id) {
		t.Fatalf("SendEvent: %+v %v", ev, err)
	}
	_, err = c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: aws.String(room), EventName: aws.String(strings.Repeat("e", 101))})
	validation(err, "eventName")
	_, err = c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: aws.String(missing), EventName: aws.String("x")})
	wantCode(t, err, "ResourceNotFoundException")
	dm, err := c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(room), Id: aws.String("abcdefABCDEF"), Reason: aws.String("spam")})
	if err != nil || *dm.Id == "abcdefABCDEF" {
		t.Fatalf("DeleteMessage: %+v %v", dm, err)
	}
	_, err = c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(room), Id: aws.String("short")})
	validation(err, "id")
	_, err = c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(room), Id: aws.String("abcdefABCDEF"), Reason: aws.String(strings.Repeat("r", 257))})
	validation(err, "reason")
	if _, err := c.DisconnectUser(ctx, &ivschat.DisconnectUserInput{RoomIdentifier: aws.String(room), UserId: aws.String("u"), Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DisconnectUser(ctx, &ivschat.DisconnectUserInput{RoomIdentifier: aws.String(room), UserId: aws.String("")})
	validation(err, "userId")

	// --- tags on both resource types (the ARN travels double-encoded in the signature) ---
	for _, arn := range []string{room, *cwcfg.Arn} {
		if _, err := c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"env": "prod", "x": "1"}}); err != nil {
			t.Fatalf("TagResource %s: %v", arn, err)
		}
		if _, err := c.UntagResource(ctx, &ivschat.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"x"}}); err != nil {
			t.Fatalf("UntagResource: %v", err)
		}
		lt, err := c.ListTagsForResource(ctx, &ivschat.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil || lt.Tags["env"] != "prod" || lt.Tags["x"] != "" {
			t.Fatalf("ListTagsForResource %s: %v %v", arn, lt.Tags, err)
		}
	}
	_, err = c.ListTagsForResource(ctx, &ivschat.ListTagsForResourceInput{ResourceArn: aws.String(missing)})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: aws.String("arn:aws:ivs:us-east-1:000000000000:channel/AAAAAAAAAAAA"), Tags: map[string]string{"a": "b"}})
	wantCode(t, err, "ValidationException")

	// --- signatures: a wrong secret is refused as AWS does ---
	bad := ivschat.New(ivschat.Options{Region: testRegion, BaseEndpoint: aws.String(n.endpoint()), Credentials: staticCreds(testAccessKey, "wrong"), RetryMaxAttempts: 1, HTTPClient: sdkHTTP})
	_, err = bad.ListRooms(ctx, &ivschat.ListRoomsInput{})
	wantCode(t, err, "InvalidSignatureException")

	// --- deletion ---
	if _, err := c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: aws.String(room), LoggingConfigurationIdentifiers: []string{}}); err != nil {
		t.Fatal(err)
	}
	for _, arn := range []*string{s3cfg.Arn, cwcfg.Arn} {
		if _, err := c.DeleteLoggingConfiguration(ctx, &ivschat.DeleteLoggingConfigurationInput{Identifier: arn}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: cwcfg.Arn})
	wantCode(t, err, "ResourceNotFoundException")
	if _, err := c.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: aws.String(room)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: aws.String(room)})
	wantCode(t, err, "ResourceNotFoundException")

	// --- everything survives a restart (state lives in JetStream) ---
	n.restart(false)
	lr, err := c.ListRooms(ctx, &ivschat.ListRoomsInput{})
	if err != nil || len(lr.Rooms) != 4 {
		t.Fatalf("after restart: %d rooms, %v", len(lr.Rooms), err)
	}
}
