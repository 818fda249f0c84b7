package control

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"glasscast/bus"
	"glasscast/ingestctl"
	"glasscast/store"
)

// FuzzOperations feeds arbitrary JSON bodies, query strings and resource ARNs to every IVS
// operation against a real store: each must answer with a result or an AWS-shaped client error,
// never a panic or an internal error.
func FuzzOperations(f *testing.F) {
	seeds := []string{
		`{}`, `{"name":"x","type":"BASIC","latencyMode":"LOW","tags":{"a":"b"}}`,
		`{"arn":"arn:aws:ivs:us-east-1:000000000000:channel/abc"}`, `{"arns":["x",1,null]}`,
		`{"maxResults":0,"nextToken":"%%%"}`, `{"destinationConfiguration":{"s3":{"bucketName":"b"}}}`,
		`{"thumbnailConfiguration":{"targetIntervalSeconds":1e99}}`, `[`, `null`, `{"tags":{"":""}}`,
		`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}`,
		`{"channelArn":"arn:aws:ivs:us-east-1:000000000000:channel/abc","metadata":"\xff"}`,
	}
	for _, s := range seeds {
		f.Add(s, "tagKeys=a&tagKeys=", "arn:aws:ivs:us-east-1:000000000000:channel/abc")
	}
	dir := f.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(context.Background(), bus.Config{DataDir: dir, Name: "fuzz"}, log)
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, b.JS, bus.Replication{})
	if err != nil {
		f.Fatal(err)
	}
	srv := New(Config{Region: "us-east-1", Account: "000000000000", Quotas: Quotas{Channels: 50, StreamKeysPerChannel: 2, PlaybackKeyPairs: 3, RecordingConfigurations: 5}},
		st, &ingestctl.Client{NC: b.Conn, Timeout: 100 * time.Millisecond}, nil, log)
	f.Fuzz(func(t *testing.T, body, query, resARN string) {
		for name, op := range srv.ivs {
			q := map[string][]string{}
			for _, kv := range splitQuery(query) {
				q[kv[0]] = append(q[kv[0]], kv[1])
			}
			r := &request{body: []byte(body), query: q, resARN: resARN, baseURL: "http://h", host: "h"}
			_, err := op(ctx, r)
			if err == nil {
				continue
			}
			if ae := asAPIError(err); ae.Status >= 500 {
				t.Fatalf("%s with body %q: internal error %v", name, body, err)
			}
		}
	})
}

func splitQuery(q string) [][2]string {
	var out [][2]string
	start := 0
	for i := 0; i <= len(q); i++ {
		if i == len(q) || q[i] == '&' {
			kv := q[start:i]
			for j := 0; j < len(kv); j++ {
				if kv[j] == '=' {
					out = append(out, [2]string{kv[:j], kv[j+1:]})
					break
				}
			}
			start = i + 1
		}
	}
	return out
}
