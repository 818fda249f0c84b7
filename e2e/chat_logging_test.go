package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type logRecord struct {
	EventTimestamp string          `json:"event_timestamp"`
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload"`
	Version        string          `json:"version"`
}

func parseRecords(t *testing.T, b []byte) []logRecord {
	t.Helper()
	var out []logRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		if r.Version != "1.0" || (r.Type != "MESSAGE" && r.Type != "EVENT") || len(r.EventTimestamp) != len("2006-01-02T15:04:05.000Z") {
			t.Fatalf("record %s", sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// sameFrames checks that records carry exactly the frames a client received, byte for byte.
func sameFrames(t *testing.T, where string, records []logRecord, frames [][]byte) {
	t.Helper()
	if len(records) != len(frames) {
		t.Fatalf("%s: %d records for %d frames", where, len(records), len(frames))
	}
	want := map[string]bool{}
	for _, f := range frames {
		want[string(f)] = true
	}
	for _, r := range records {
		if !want[string(r.Payload)] {
			t.Fatalf("%s: record payload %s is no frame the client received", where, r.Payload)
		}
		delete(want, string(r.Payload))
	}
}

// TestChatLogging sends messages and events through a room with an s3, a cloudWatchLogs and a
// firehose logging configuration and checks that each destination holds exactly the frames the
// client received, the S3 one across an S3 outage.
func TestChatLogging(t *testing.T) {
	s3srv := startS3(t)
	s3srv.createBucket(t, "chat-logs")
	natsAddr := freePort(t)
	n := startChatServe(t, append(s3srv.serveArgs(), "--chat-s3-flush-interval", "1s", "--nats-listen", natsAddr, "--https-listen", "")...)
	c := n.chatClient()
	ctx := ctxT(t, 3*time.Minute)

	var cfgs []string
	for _, d := range []chattypes.DestinationConfiguration{
		&chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("chat-logs")}},
		&chattypes.DestinationConfigurationMemberCloudWatchLogs{Value: chattypes.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("/aws/ivschat/test")}},
		&chattypes.DestinationConfigurationMemberFirehose{Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat.firehose")}},
	} {
		out, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: d})
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, *out.Arn)
	}
	room := chatRoom(t, ctx, c, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: cfgs})
	id := roomID(room)
	w := mustDial(t, n.chatURL(), chatToken(t, ctx, c, room, "logger", map[string]string{"name": "<L&gger>"}, allCaps...))

	var frames [][]byte
	sendAndCollect := func(req map[string]any) frame {
		t.Helper()
		w.send(req)
		for {
			f := w.next(nil)
			if f.Type == "ERROR" {
				t.Fatalf("error frame %s", f.raw)
			}
			frames = append(frames, f.raw)
			if f.RequestId == req["RequestId"] {
				return f
			}
		}
	}
	m1 := sendAndCollect(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "1", "Content": "first <b>", "Attributes": map[string]string{"a": "b"}})
	sendAndCollect(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "2", "Content": "emoji 😀"})
	sendAndCollect(map[string]any{"Action": "DELETE_MESSAGE", "RequestId": "3", "Id": m1.Id, "Reason": "spam"})
	apiEvent := func() {
		t.Helper()
		ev, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: aws.String(room), EventName: aws.String("app:event")})
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, w.next(func(f frame) bool { return f.Id == *ev.Id }).raw)
	}
	apiEvent()

	// S3 goes away: records wait and are retried, nothing is lost.
	s3srv.stop()
	for i := 0; i < 5; i++ {
		sendAndCollect(map[string]any{"Action": "SEND_MESSAGE", "RequestId": "outage" + string(rune('a'+i)), "Content": "during the outage"})
	}
	apiEvent()
	time.Sleep(3 * time.Second) // several failed flushes
	s3srv.start()

	// cloudWatchLogs: a JSON-lines file per log group and room in the data folder.
	file := filepath.Join(n.DataDir, "chat-logs", "aws/ivschat/test", "aws/IVSChatLogs/1.0", "room_"+id+".log")
	var records []logRecord
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		records = parseRecords(t, b)
		if len(records) >= len(frames) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	sameFrames(t, "cloudWatchLogs file", records, frames)
	for i, r := range records { // the file is in stream order, which is the order clients see
		if string(r.Payload) != string(frames[i]) {
			t.Fatalf("record %d out of order: %s, want %s", i, r.Payload, frames[i])
		}
	}

	// firehose: a JetStream stream named after the delivery stream.
	nc, err := nats.Connect("nats://"+natsAddr, natsLoginOption(t, n))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, "chat_firehose", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("firehose stream: %v", err)
	}
	records = nil
	for len(records) < len(frames) {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("firehose: %d records, then %v", len(records), err)
		}
		records = append(records, parseRecords(t, m.Data())...)
	}
	sameFrames(t, "firehose stream", records, frames)

	// s3: gzip JSON-lines objects under IVS Chat's key layout, complete after the outage.
	prefix := "AWSLogs/000000000000/IVSChatLogs/1.0/us-east-1/room_" + id + "/"
	deadline = time.Now().Add(60 * time.Second)
	for {
		records = nil
		keys := s3srv.keys(t, "chat-logs", prefix)
		for _, k := range keys {
			name := k[strings.LastIndexByte(k, '/')+1:]
			if !strings.HasPrefix(name, "000000000000_IVSChatLogs_1.0_us-east-1_room_"+id+"_") || !strings.HasSuffix(name, ".log.gz") {
				t.Fatalf("S3 key %s", k)
			}
			gz, _ := s3srv.get(t, "chat-logs", k)
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			b, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			records = append(records, parseRecords(t, b)...)
		}
		if len(records) >= len(frames) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	sameFrames(t, "s3 objects", records, frames)
}
