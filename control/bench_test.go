package control

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivs"

	"glasscast/bus"
	"glasscast/ingestctl"
	"glasscast/store"
)

// benchServer is the control API over real HTTP with 1,000 channels, driven by the real SDK
// client (which signs every request, as users' clients do).
func benchServer(b *testing.B) (*ivs.Client, []string) {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bs, err := bus.Open(context.Background(), bus.Config{DataDir: b.TempDir(), Name: "bench"}, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() { cancel(); bs.Close() })
	st, err := store.Open(ctx, bs.JS, bus.Replication{})
	if err != nil {
		b.Fatal(err)
	}
	srv := New(Config{Region: "us-east-1", Account: "000000000000", Secret: func(id string) (string, bool) { return "secret", id == "AKGCBENCH" }},
		st, &ingestctl.Client{NC: bs.Conn}, nil, log)
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	c := ivs.New(ivs.Options{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL), Credentials: credentials.NewStaticCredentialsProvider("AKGCBENCH", "secret", "")})
	var arns []string
	for i := 0; i < 1000; i++ {
		out, err := c.CreateChannel(ctx, &ivs.CreateChannelInput{Name: aws.String(fmt.Sprintf("ch-%04d", i))})
		if err != nil {
			b.Fatal(err)
		}
		arns = append(arns, *out.Channel.Arn)
	}
	return c, arns
}

func BenchmarkControlAPI(b *testing.B) {
	c, arns := benchServer(b)
	ctx := context.Background()
	b.Run("GetChannel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := c.GetChannel(ctx, &ivs.GetChannelInput{Arn: aws.String(arns[i%len(arns)])}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("ListChannels100", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				out, err := c.ListChannels(ctx, &ivs.ListChannelsInput{MaxResults: aws.Int32(100)})
				if err != nil || len(out.Channels) != 100 {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
