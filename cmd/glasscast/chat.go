package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"glasscast/bench"
	"glasscast/chat"
	"glasscast/chat/chatlog"
)

// chatConfig is the IVS Chat part of Config.
type chatConfig struct {
	Path          string
	SendQueue     int
	ReviewTargets string
	StreamMaxMB   int
	StreamMaxAge  time.Duration
	LogDir        string
	LogStdout     bool
	S3Endpoint    string
	S3Region      string
	S3AccessKeyID string
	S3Secret      string
	S3PathStyle   bool
	S3FlushEvery  time.Duration
	S3BufferMB    int
	PingInterval  time.Duration
	WriteTimeout  time.Duration
}

func defaultChatConfig() chatConfig {
	return chatConfig{Path: "/chat", SendQueue: 256, StreamMaxMB: 256, StreamMaxAge: time.Hour,
		S3FlushEvery: 5 * time.Second, S3BufferMB: 64, PingInterval: 30 * time.Second, WriteTimeout: 10 * time.Second}
}

// parseReviewTargets reads "arn:aws:lambda:...:function:a=https://hook/a,arn:...=https://hook/b".
func parseReviewTargets(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" || !(strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")) {
			return nil, fmt.Errorf("chat.reviewTargets: %q is not <handler uri>=<http(s) URL>", pair)
		}
		out[k] = v
	}
	return out, nil
}

// startChat runs the IVS Chat parts of the node's roles: with the control API, the backend that
// mints tokens and sends API events, and the chat logger; with an edge, the messaging WebSocket.
func (n *node) startChat(ctx context.Context) error {
	cfg := n.cfg.Chat
	log := n.log.With("role", "chat")
	maxBytes := int64(cfg.StreamMaxMB) << 20
	if n.roles&roleControl != 0 {
		b, err := chat.NewBackend(ctx, n.store, n.bus.JS, maxBytes, cfg.StreamMaxAge)
		if err != nil {
			return err
		}
		n.chatAPI = b
		lc := chatlog.Config{Region: n.cfg.Region, Account: n.cfg.Account, Dir: cfg.LogDir,
			FlushInterval: cfg.S3FlushEvery, MaxBuffer: int64(cfg.S3BufferMB) << 20}
		if lc.Dir == "" {
			lc.Dir = filepath.Join(n.cfg.DataDir, "chat-logs")
		}
		if cfg.LogStdout {
			lc.Stdout = os.Stdout
		}
		lc.S3 = chatS3Client(n.cfg)
		logger := chatlog.New(lc, n.store, n.bus.JS, log)
		n.goRole(func() {
			if err := logger.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("chat logging stopped", "err", err)
			}
		})
	}
	if n.roles&roleEdge != 0 {
		targets, err := parseReviewTargets(cfg.ReviewTargets)
		if err != nil {
			return err
		}
		srv, err := chat.New(ctx, chat.Config{Region: n.cfg.Region, Account: n.cfg.Account, SendQueue: cfg.SendQueue,
			PingInterval: cfg.PingInterval, WriteTimeout: cfg.WriteTimeout, ReviewTargets: targets,
			StreamMaxBytes: maxBytes, StreamMaxAge: cfg.StreamMaxAge}, n.store, n.bus.JS, log)
		if err != nil {
			return err
		}
		n.fastExt[cfg.Path] = srv.ServeFastHTTP
		n.monitorChat(srv)
		n.mux.Handle(cfg.Path, srv)
		n.defer_(srv.Close)
	}
	return nil
}

// chatS3Client is the S3 client of s3 chat logging destinations: the deployment's S3, as the
// archive.s3* options configure it for recordings; nil when none is configured.
func chatS3Client(cfg *Config) *s3.Client {
	a := cfg.Archive
	if a.S3Endpoint == "" {
		return nil
	}
	region := a.S3Region
	if region == "" {
		region = cfg.Region
	}
	o := s3.Options{Region: region, UsePathStyle: a.S3PathStyle,
		// Checksums only where S3 requires them: many S3-compatible servers reject the trailing
		// checksums the SDK otherwise adds. The logger retries on its own schedule.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
		Credentials:                aws.AnonymousCredentials{},
	}
	if a.S3Endpoint != "aws" {
		o.BaseEndpoint = aws.String(a.S3Endpoint)
	}
	id, secret := a.S3AccessKeyID, a.S3Secret
	if id == "" {
		id, secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if id != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	}
	return s3.New(o)
}

// runChatBench is `glasscast bench chat`.
func runChatBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench chat", flag.ContinueOnError)
	cfg := bench.ChatConfig{Region: "us-east-1"}
	fs.StringVar(&cfg.URL, "url", "", "chat WebSocket URL, e.g. ws://127.0.0.1:8080/chat")
	fs.StringVar(&cfg.URL2, "url2", "", "a second edge's chat URL: every other client connects there (measures fan-out between edges)")
	fs.StringVar(&cfg.API, "api", "", "control API endpoint that creates rooms and mints tokens, e.g. http://127.0.0.1:8080")
	fs.StringVar(&cfg.Region, "region", cfg.Region, "region of the API")
	fs.IntVar(&cfg.Rooms, "rooms", 10, "rooms to spread the clients over")
	fs.IntVar(&cfg.Clients, "clients", 1000, "concurrent WebSocket clients")
	fs.Float64Var(&cfg.Rate, "rate", 20, "messages per second over all rooms")
	fs.IntVar(&cfg.Senders, "senders", 5, "clients per room that send")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to send")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 500, "new connections per second while ramping up")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of the server, to report its memory per connection (same machine only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.URL == "" || cfg.API == "" {
		return errors.New("--url and --api are required")
	}
	// The API's credentials come from the environment, as for the AWS CLI.
	cfg.AccessKeyID, cfg.SecretAccessKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if r := os.Getenv("AWS_REGION"); r != "" && cfg.Region == "us-east-1" {
		cfg.Region = r
	}
	cfg.Progress = os.Stderr
	rep, err := bench.Chat(ctx, cfg)
	fmt.Print(rep)
	return err
}
