package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"glasscast/control"
)

// Config is the whole process configuration; each role reads its part.
type Config struct {
	DataDir  string
	LogLevel string
	Region   string
	Account  string
	NodeName string

	HTTPListen string

	NATSURL    string
	NATSListen string
	NATSCreds  string

	AccessKeyID     string
	SecretAccessKey string
	PlaybackBaseURL string
	IngestHost      string
	Quotas          control.Quotas

	RTMPListen     string
	RTMPSListen    string
	TLSCert        string
	TLSKey         string
	PartTarget     time.Duration
	SegmentTarget  time.Duration
	ReconnectGrace time.Duration

	OriginWindow int
	OriginLinger time.Duration
}

func defaultConfig() *Config {
	return &Config{
		DataDir:    "./data",
		LogLevel:   "info",
		Region:     "us-east-1",
		Account:    "000000000000",
		HTTPListen: ":8080",
		Quotas:     control.Quotas{Channels: 5000, StreamKeysPerChannel: 2, PlaybackKeyPairs: 3, RecordingConfigurations: 20},

		RTMPListen:     ":1935",
		RTMPSListen:    ":1936",
		PartTarget:     200 * time.Millisecond,
		SegmentTarget:  2 * time.Second,
		ReconnectGrace: 5 * time.Second,
		OriginWindow:   12,
		OriginLinger:   2 * time.Minute,
	}
}

// options lists every setting once. Keys have at most one dot (section.name).
func (c *Config) options() []option {
	return []option{
		{"dataDir", "Folder for persistent state (NATS JetStream files, generated credentials and certificates).", &c.DataDir},
		{"logLevel", "Log level: debug, info, warn or error.", &c.LogLevel},
		{"region", "AWS region this deployment answers as; it appears in ARNs and playback URLs.", &c.Region},
		{"account", "12-digit AWS account id this deployment answers as; it appears in ARNs and playback URLs.", &c.Account},
		{"nodeName", "Name of this process in the cluster. Empty uses the host name.", &c.NodeName},
		{"http.listen", "Address of the HTTP listener for the API, playback, chat and /metrics.", &c.HTTPListen},
		{"nats.url", "External NATS cluster URL(s), comma separated. Empty runs an embedded NATS server with JetStream in dataDir.", &c.NATSURL},
		{"nats.listen", "When set (e.g. 127.0.0.1:4222), the embedded NATS server accepts other Glasscast processes on this address.\nEmpty keeps it private to this process.", &c.NATSListen},
		{"nats.creds", "NATS credentials file for an external cluster.", &c.NATSCreds},
		{"api.accessKeyId", "Access key id accepted by the SigV4-signed control API. Empty uses the key generated into dataDir on first start.", &c.AccessKeyID},
		{"api.secretAccessKey", "Secret of api.accessKeyId.", &c.SecretAccessKey},
		{"api.playbackBaseUrl", "Scheme and host put in front of playback URLs (e.g. https://live.example.com). Empty uses the host the API was called on.", &c.PlaybackBaseURL},
		{"api.ingestHost", "Host name returned as a channel's ingestEndpoint. Empty uses the host the API was called on.", &c.IngestHost},
		{"quotas.channels", "Most channels the account may create (0 = unlimited).", &c.Quotas.Channels},
		{"quotas.streamKeysPerChannel", "Most stream keys per channel. IVS allows 1; 2 lets a broadcaster rotate keys without going off air.", &c.Quotas.StreamKeysPerChannel},
		{"quotas.playbackKeyPairs", "Most playback key pairs the account may import.", &c.Quotas.PlaybackKeyPairs},
		{"quotas.recordingConfigurations", "Most recording configurations the account may create.", &c.Quotas.RecordingConfigurations},
		{"ingest.rtmpListen", "Address of the plain RTMP listener (only channels with insecureIngest accept it). Empty disables it.", &c.RTMPListen},
		{"ingest.rtmpsListen", "Address of the RTMPS listener. Empty disables it.", &c.RTMPSListen},
		{"ingest.partTarget", "Requested LL-HLS part duration; the advertised PART-TARGET is a whole number of frames near it.", &c.PartTarget},
		{"ingest.segmentTarget", "Segment target duration (TARGETDURATION); segments start on key frames, so use a key frame interval of at most this.", &c.SegmentTarget},
		{"ingest.reconnectGrace", "How long a broadcast waits for a disconnected publisher; a reconnect within it continues the same stream session.", &c.ReconnectGrace},
		{"tls.cert", "PEM certificate for RTMPS (and HTTPS). Empty uses a self-signed certificate generated into dataDir/tls.", &c.TLSCert},
		{"tls.key", "PEM private key of tls.cert.", &c.TLSKey},
		{"origin.window", "Segments listed in a media playlist (at least 6).", &c.OriginWindow},
		{"origin.linger", "How long an ended broadcast's playlists (with EXT-X-ENDLIST) stay available.", &c.OriginLinger},
	}
}

func (c *Config) validate() error {
	if len(c.Account) != 12 || strings.Trim(c.Account, "0123456789") != "" {
		return fmt.Errorf("account %q must be 12 digits", c.Account)
	}
	if c.Region == "" || strings.Trim(c.Region, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("region %q must be lower-case letters, digits and dashes", c.Region)
	}
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return fmt.Errorf("api.accessKeyId and api.secretAccessKey must be set together")
	}
	return nil
}

func (c *Config) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("logLevel %q: %w", c.LogLevel, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})), nil
}
