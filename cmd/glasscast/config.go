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

	HTTPListen        string
	HTTPMaxConnsPerIP int
	HTTPMaxConns      int
	HTTPBodyTimeout   time.Duration
	HTTPWriteTimeout  time.Duration

	NATSURL    string
	NATSListen string
	NATSCreds  string
	NATS       natsConfig

	AccessKeyID     string
	SecretAccessKey string
	PlaybackBaseURL string
	IngestHost      string
	SRTEndpoint     string
	Quotas          control.Quotas

	RTMPListen     string
	RTMPSListen    string
	TLSCert        string
	TLSKey         string
	PartTarget     time.Duration
	SegmentTarget  time.Duration
	ReconnectGrace time.Duration

	IngestMaxPending       int
	IngestMaxPendingPerIP  int
	IngestMaxPublishers    int
	IngestHandshakeTimeout time.Duration

	WHIPUDPListen string
	WHIPTCPListen string
	WHIPHosts     string
	WHIPTimeout   time.Duration

	SRTListen          string
	SRTLatency         time.Duration
	SRTPeerIdleTimeout time.Duration

	OriginWindow     int
	OriginLinger     time.Duration
	OriginListen     string
	OriginPublicURL  string
	OriginPushToken  string
	OriginDateRanges bool
	// OriginPartHoldBack is PART-HOLD-BACK in part targets.
	OriginPartHoldBack float64

	IngestOriginURLs string

	IngestPushQueueMB int
	IngestPushRetry   time.Duration

	HTTPSListen  string
	EdgeUpstream string
	EdgeCacheMB  int

	NodeRegion         string
	NodeZone           string
	EdgePublicURL      string
	Director           directorConfig
	EdgeTokenBinding   string
	EdgeSessionMaxAge  time.Duration
	EdgeObjectTokenTTL time.Duration
	EdgeCountryHeader  string
	EdgeGeoIPDatabase  string

	Chat chatConfig

	Archive archiveConfig

	Transcode transcodeConfig

	Monitoring monitoringConfig

	// GCPercent and MemoryLimit tune Go's collector (see runtime.go).
	GCPercent   int
	MemoryLimit float64
}

// natsConfig is the NATS replication, login and TLS settings (nats.*) beyond the URL.
type natsConfig struct {
	Replicas       int
	PlacementTags  string
	User, Password string
	Token          string
	NkeySeed       string
	TLSCert        string
	TLSKey         string
	TLSCA          string
}

func defaultConfig() *Config {
	return &Config{
		DataDir:    "./data",
		LogLevel:   "info",
		Region:     "us-east-1",
		Account:    "000000000000",
		HTTPListen: ":8080",
		// A viewer holds one or two connections (HTTP/2: one; HTTP/1.1: a blocking playlist
		// request and a part); 1,000 per address serves an office or a carrier-grade NAT address
		// of several hundred viewers, and one address can hold at most 5 % of the 20,000 total,
		// which at about 30 KB per idle connection bounds them to some 600 MB.
		HTTPMaxConnsPerIP: 1000,
		HTTPMaxConns:      20000,
		HTTPBodyTimeout:   30 * time.Second,
		HTTPWriteTimeout:  2 * time.Minute,
		Quotas:            control.Quotas{Channels: 5000, StreamKeysPerChannel: 2, PlaybackKeyPairs: 3, RecordingConfigurations: 20, PlaybackRestrictionPolicies: 20, AdConfigurations: 20, ChatRooms: 50000, ChatLoggingConfigurations: 10},

		RTMPListen:         ":1935",
		RTMPSListen:        ":1936",
		SRTListen:          ":9000",
		SRTLatency:         500 * time.Millisecond,
		SRTPeerIdleTimeout: 10 * time.Second,
		PartTarget:         200 * time.Millisecond,
		SegmentTarget:      2 * time.Second,
		ReconnectGrace:     5 * time.Second,
		OriginWindow:       12,
		OriginLinger:       2 * time.Minute,
		OriginPartHoldBack: 3,
		HTTPSListen:        ":8443",
		EdgeCacheMB:        512,
		GCPercent:          100,
		MemoryLimit:        0.7,
		Chat:               defaultChatConfig(),
		Archive:            defaultArchiveConfig(),
		Transcode:          defaultTranscodeConfig(),
		Monitoring:         defaultMonitoringConfig(),

		IngestPushQueueMB:      16,
		IngestPushRetry:        5 * time.Second,
		EdgeTokenBinding:       "ip",
		EdgeSessionMaxAge:      12 * time.Hour,
		EdgeObjectTokenTTL:     time.Minute,
		IngestMaxPending:       1000,
		IngestMaxPendingPerIP:  8,
		IngestMaxPublishers:    1000,
		IngestHandshakeTimeout: 3 * time.Second,
		WHIPUDPListen:          ":8189",
		WHIPTCPListen:          ":8189",
		WHIPTimeout:            10 * time.Second,
	}
}

// options lists every setting once. Keys have at most one dot (section.name).
func (c *Config) options() []option {
	return []option{
		{"dataDir", "Folder for persistent state (NATS JetStream files, generated credentials and certificates).", &c.DataDir},
		{"logLevel", "Log level: debug, info, warn or error.", &c.LogLevel},
		{"runtime.gcPercent", "Go's GOGC: how far, in percent of live memory, the heap may grow between collections. Higher trades memory\n(bounded by runtime.memoryLimit) for fewer collections. The GOGC environment variable overrides it.", &c.GCPercent},
		{"runtime.memoryLimit", "Share of the machine's memory, or of its cgroup's limit when lower, that Go's heap stays under: collections come\nsooner as the heap nears it, whatever runtime.gcPercent says. 0 sets no limit. The GOMEMLIMIT environment variable overrides it.", &c.MemoryLimit},
		{"region", "AWS region this deployment answers as; it appears in ARNs and playback URLs.", &c.Region},
		{"account", "12-digit AWS account id this deployment answers as; it appears in ARNs and playback URLs.", &c.Account},
		{"nodeName", "Name of this process in the cluster. Empty uses the host name.", &c.NodeName},
		{"http.listen", "Address of the HTTP listener for the API, playback, chat and /metrics.", &c.HTTPListen},
		{"http.maxConnsPerIp", "Most connections one client address (an IPv6 /64 counts as one) may hold on the HTTP and HTTPS listeners together; more are closed at once (0 = no cap).\nBehind a load balancer or reverse proxy every viewer shares its address, and a shield edge's clients are a few edges\nwith many fills each: there, raise it or set 0 (and cap at the proxy).", &c.HTTPMaxConnsPerIP},
		{"http.maxConns", "Most connections the HTTP and HTTPS listeners hold together; more are closed at once (0 = no cap).", &c.HTTPMaxConns},
		{"http.bodyTimeout", "Longest a client may take to send a request body after its headers, on the HTTP and HTTPS listeners.\nRequests without a body (playback, chat WebSockets) are not bound by it.", &c.HTTPBodyTimeout},
		{"http.writeTimeout", "Longest a response may take to reach a client that stops reading, on the HTTP and HTTPS listeners (on HTTP/2, per stream).\nPlaylists, parts and segments take far less; a console event feed and a recording download keep extending theirs while the browser reads.", &c.HTTPWriteTimeout},
		{"nats.url", "External NATS cluster URL(s), comma separated. Empty runs an embedded NATS server with JetStream in dataDir.", &c.NATSURL},
		{"nats.listen", "When set (e.g. 127.0.0.1:4222), the embedded NATS server accepts other Glasscast processes on this address.\nEmpty keeps it private to this process.", &c.NATSListen},
		{"nats.creds", "NATS credentials file for an external cluster.", &c.NATSCreds},
		{"nats.replicas", "Copies kept of every JetStream stream and key-value bucket: 1 for the embedded server, 3 in a NATS cluster\n(state then survives the loss of one server). Raising it updates existing streams in place; it never lowers them.", &c.NATS.Replicas},
		{"nats.placementTags", "Comma-separated server tags (nats-server server_tags, e.g. region:a) that streams and buckets are placed on.", &c.NATS.PlacementTags},
		{"nats.user", "NATS user: what this process logs in to nats.url with, or what the embedded server requires with nats.listen.\nWith nats.listen and no user, token or nkey seed, one is generated into dataDir/nats-credentials.json and printed once.", &c.NATS.User},
		{"nats.password", "Password of nats.user.", &c.NATS.Password},
		{"nats.token", "NATS token, instead of nats.user and nats.password.", &c.NATS.Token},
		{"nats.nkeySeed", "File holding an NATS nkey user seed (SU...), instead of a user or token.", &c.NATS.NkeySeed},
		{"nats.tlsCert", "PEM certificate: the embedded server with nats.listen serves (and requires) TLS with it;\na client of nats.url presents it as its client certificate.", &c.NATS.TLSCert},
		{"nats.tlsKey", "PEM private key of nats.tlsCert.", &c.NATS.TLSKey},
		{"nats.tlsCa", "PEM CA certificates that verify the servers of nats.url. Empty uses the system roots.", &c.NATS.TLSCA},
		{"api.accessKeyId", "Access key id accepted by the SigV4-signed control API. Empty uses the key generated into dataDir on first start.", &c.AccessKeyID},
		{"api.secretAccessKey", "Secret of api.accessKeyId.", &c.SecretAccessKey},
		{"api.playbackBaseUrl", "Scheme and host put in front of playback URLs (e.g. https://live.example.com). Empty uses the host the API was called on.", &c.PlaybackBaseURL},
		{"api.ingestHost", "Host name returned as a channel's ingestEndpoint. Empty uses the host the API was called on.", &c.IngestHost},
		{"api.srtEndpoint", "Returned as a channel's srt.endpoint (IVS: a host name; encoders add port 9000). Empty uses the ingest host, with the port of ingest.srtListen unless it is 9000.", &c.SRTEndpoint},
		{"quotas.channels", "Most channels the account may create (0 = unlimited).", &c.Quotas.Channels},
		{"quotas.streamKeysPerChannel", "Most stream keys per channel. IVS allows 1; 2 lets a broadcaster rotate keys without going off air.", &c.Quotas.StreamKeysPerChannel},
		{"quotas.playbackKeyPairs", "Most playback key pairs the account may import.", &c.Quotas.PlaybackKeyPairs},
		{"quotas.recordingConfigurations", "Most recording configurations the account may create.", &c.Quotas.RecordingConfigurations},
		{"quotas.playbackRestrictionPolicies", "Most playback restriction policies the account may create.", &c.Quotas.PlaybackRestrictionPolicies},
		{"quotas.adConfigurations", "Most ad configurations the account may create.", &c.Quotas.AdConfigurations},
		{"ingest.rtmpListen", "Address of the plain RTMP listener (only channels with insecureIngest accept it). Empty disables it.", &c.RTMPListen},
		{"ingest.rtmpsListen", "Address of the RTMPS listener. Empty disables it.", &c.RTMPSListen},
		{"ingest.srtListen", "UDP address of the SRT listener (MPEG-TS over SRT; the stream key is the streamid). Empty disables it.", &c.SRTListen},
		{"ingest.srtLatency", "SRT receiver latency: how long lost packets may take to be resent. A publisher asking for more gets more; about 4 round trips suits lossy links.", &c.SRTLatency},
		{"ingest.srtPeerIdleTimeout", "An SRT publisher from which nothing (not even a keepalive) arrives for this long is disconnected.", &c.SRTPeerIdleTimeout},
		{"ingest.partTarget", "Requested LL-HLS part duration; the advertised PART-TARGET is a whole number of frames near it.", &c.PartTarget},
		{"ingest.segmentTarget", "Segment target duration (TARGETDURATION); segments start on key frames, so use a key frame interval of at most this.", &c.SegmentTarget},
		{"ingest.reconnectGrace", "How long a broadcast waits for a disconnected publisher; a reconnect within it continues the same stream session.", &c.ReconnectGrace},
		{"ingest.maxPending", "Most RTMP(S) connections held before their stream key is accepted; past it the oldest is closed, so idle sockets cannot lock publishers out.", &c.IngestMaxPending},
		{"ingest.maxPendingPerIp", "Most of those pending connections from one address (IPv6: one /64); its next one closes its oldest.", &c.IngestMaxPendingPerIP},
		{"ingest.maxPublishers", "Most connections publishing with an accepted stream key, counted apart from pending ones.", &c.IngestMaxPublishers},
		{"ingest.handshakeTimeout", "Time a connection has from TCP accept to an accepted publish (TLS handshake, RTMP handshake, connect, publish).\nRaise it for publishers on very slow links (satellite).", &c.IngestHandshakeTimeout},
		{"ingest.whipUdpListen", "UDP address ICE uses for every WHIP publisher (one port for all). Empty, with ingest.whipTcpListen empty too, disables WHIP.", &c.WHIPUDPListen},
		{"ingest.whipTcpListen", "TCP address ICE uses for WHIP publishers whose network blocks UDP. Empty disables ICE over TCP.", &c.WHIPTCPListen},
		{"ingest.whipHosts", "Comma-separated addresses WHIP offers as ICE candidates instead of the interfaces' own (the public IP of a host behind NAT).", &c.WHIPHosts},
		{"ingest.whipTimeout", "A WHIP session whose publisher sends no media (or whose ICE does not connect) for this long ends.", &c.WHIPTimeout},
		{"tls.cert", "PEM certificate for RTMPS (and HTTPS). Empty uses a self-signed certificate generated into dataDir/tls.", &c.TLSCert},
		{"tls.key", "PEM private key of tls.cert.", &c.TLSKey},
		{"origin.window", "Segments listed in a media playlist (at least 6).", &c.OriginWindow},
		{"origin.linger", "How long an ended broadcast's playlists (with EXT-X-ENDLIST) stay available.", &c.OriginLinger},
		{"origin.listen", "When set, the origin also listens here for edges and ingests in other processes (playback paths and /_push/).", &c.OriginListen},
		{"origin.publicUrl", "Base URL other processes use to reach origin.listen (default http://<origin.listen>); published in live registrations.", &c.OriginPublicURL},
		{"origin.partHoldBack", "PART-HOLD-BACK of LOW latency playlists, in part targets: how far behind the live edge hls.js and Safari aim.\nThe spec requires at least 2 and recommends 3; below 3 the conformance checker's P5 (a SHOULD) fails.", &c.OriginPartHoldBack},
		{"origin.dateRanges", "Also announce timed metadata as EXT-X-DATERANGE in media playlists (for players that read only date ranges; hls.js then fires each cue twice).", &c.OriginDateRanges},
		{"origin.pushToken", "Shared secret ingests present to origins. Empty uses one generated once and shared over NATS.", &c.OriginPushToken},
		{"ingest.originUrls", "Comma-separated origin base URLs an ingest without an in-process origin pushes to (several for failover).", &c.IngestOriginURLs},
		{"ingest.pushQueueMb", "Megabytes of parts queued for each origin of ingest.originUrls; an origin that falls further behind is re-synchronised at the next segment.", &c.IngestPushQueueMB},
		{"ingest.pushRetryMax", "Longest wait between attempts to reach an origin that failed; attempts start 250 ms apart and continue for the whole broadcast.", &c.IngestPushRetry},
		{"https.listen", "Address of the HTTPS listener (HTTP/2, which Apple players need for low-latency HLS); same paths as http.listen. Empty disables it.", &c.HTTPSListen},
		{"edge.upstream", "Where this edge fills its cache from: origin or shield edge URLs, comma separated, tried in order (a failed one is skipped\nuntil a probe finds it again). Empty uses the in-process origin or the origins of live registrations, same region first.", &c.EdgeUpstream},
		{"edge.cacheMb", "Most megabytes of media and playlists an edge caches.", &c.EdgeCacheMB},
		{"nodeRegion", "Region label of this node (e.g. eu-west). Edges prefer origins, and the playback director edges, of the same region.\nEmpty uses region.", &c.NodeRegion},
		{"nodeZone", "Zone label of this node within its region; within a region, edges prefer origins of the same zone.", &c.NodeZone},
		{"edge.publicUrl", "Base URL this edge announces in the node registry, where the playback director sends viewers (default http://<http.listen>).", &c.EdgePublicURL},
		{"director.enabled", "Also run the playback director in this process (serve or edge); `glasscast director` runs it alone.\nPoint api.playbackBaseUrl at it so each viewer's multivariant request goes to the nearest healthy edge.", &c.Director.Enabled},
		{"director.cidrRegions", "Viewer regions by client address: comma-separated <CIDR>=<region> pairs, e.g. 10.1.0.0/16=eu-west,127.0.0.2/32=b.", &c.Director.CIDRRegions},
		{"director.regionHeader", "Trusted request header set by a load balancer or GeoDNS front that carries the viewer's country (mapped through\ndirector.countryRegions) or region label, e.g. CloudFront-Viewer-Country. Empty trusts no header.", &c.Director.RegionHeader},
		{"director.countryRegions", "Regions of countries named by director.regionHeader: comma-separated <country code>=<region> pairs, e.g. DE=eu-west,US=us-east.", &c.Director.CountryRegions},
		{"edge.tokenBinding", "What a private channel's viewer session is bound to, so that its URLs play for no other client: ip (the IPv4 address\nor IPv6 /64), subnet (IPv4 /24 or IPv6 /48, for carrier NAT that moves a viewer between addresses) or none.", &c.EdgeTokenBinding},
		{"edge.sessionMaxAge", "How long a private channel's viewer session (its media playlist URLs) lasts; then the player needs a new token.", &c.EdgeSessionMaxAge},
		{"edge.objectTokenTtl", "How long the segment and part URLs of a private channel's media playlist stay valid; each playlist renews them.", &c.EdgeObjectTokenTTL},
		{"edge.countryHeader", "Request header that carries the viewer's ISO country code, set by the CDN or load balancer in front (e.g.\nCloudFront-Viewer-Country); trusted as is, so set it only behind something that overwrites it. Used by playback\nrestriction policies; with neither this nor edge.geoipDatabase, the control API refuses policies naming countries.", &c.EdgeCountryHeader},
		{"edge.geoipDatabase", "MaxMind-format database file (GeoLite2-Country, GeoIP2-Country or compatible) that maps the viewer's address to a\ncountry for playback restriction policies, when edge.countryHeader is not set or a request lacks it.", &c.EdgeGeoIPDatabase},
		{"quotas.chatRooms", "Most IVS Chat rooms the account may create.", &c.Quotas.ChatRooms},
		{"quotas.chatLoggingConfigurations", "Most IVS Chat logging configurations the account may create.", &c.Quotas.ChatLoggingConfigurations},
		{"quotas.chatThrottle", "Answer IVS Chat API calls past IVS's default TPS quotas (CreateChatToken 200/s, SendEvent, DeleteMessage and\nDisconnectUser 100/s, tags 10/s, rooms 5/s, logging configurations 3/s) with ThrottlingException, as IVS does.", &c.Quotas.ChatThrottle},
		{"chat.path", "Path of the IVS Chat messaging WebSocket on the HTTP listeners; pages pass ws://<host>:<port><path> as regionOrUrl.", &c.Chat.Path},
		{"chat.sendQueue", "Frames queued for one chat client; a client that falls further behind is disconnected.", &c.Chat.SendQueue},
		{"chat.pingInterval", "How often idle chat connections are pinged; a client silent for two intervals is dropped.", &c.Chat.PingInterval},
		{"chat.writeTimeout", "Longest time one write to a chat client may take before the client is dropped.", &c.Chat.WriteTimeout},
		{"chat.reviewTargets", "Message review webhooks standing in for Lambda functions: comma-separated <function ARN>=<URL> pairs.\nA room's messageReviewHandler.uri may also be an https:// URL (or http:// on 127.0.0.1), called directly.", &c.Chat.ReviewTargets},
		{"chat.streamMaxMb", "Megabytes of room frames the chat stream keeps (fan-out and the logging backlog).", &c.Chat.StreamMaxMB},
		{"chat.streamMaxAge", "How long the chat stream keeps frames; chat logging catches up within it after an outage.", &c.Chat.StreamMaxAge},
		{"chat.logDir", "Folder of cloudWatchLogs chat logging destinations (<logGroupName>/aws/IVSChatLogs/1.0/room_<id>.log). Empty uses dataDir/chat-logs.", &c.Chat.LogDir},
		{"chat.logStdout", "Also print every cloudWatchLogs chat log record on standard output.", &c.Chat.LogStdout},
		{"chat.s3FlushInterval", "How often chat log records are written to S3 (the archive.s3* endpoint and keys) as a gzip object per room.", &c.Chat.S3FlushEvery},
		{"chat.s3BufferMb", "Most megabytes of chat log records held while S3 is unreachable; past it the oldest are dropped.", &c.Chat.S3BufferMB},
		{"archive.enabled", "Run the recorder in this process (serve and archive). Turn it off where another process records.", &c.Archive.Enabled},
		{"archive.s3Endpoint", "S3 endpoint recordings are written to (e.g. http://127.0.0.1:7070), or \"aws\" for AWS S3 itself.\nEmpty writes each bucket's recordings to a folder under archive.localDir instead.", &c.Archive.S3Endpoint},
		{"archive.s3Buckets", "Buckets kept on another S3 endpoint than archive.s3Endpoint: comma-separated <bucket>=<endpoint URL or aws> pairs.", &c.Archive.S3Buckets},
		{"archive.s3Region", "Region signed into S3 requests. Empty uses region.", &c.Archive.S3Region},
		{"archive.s3AccessKeyId", "Access key id for recording uploads. Empty uses AWS_ACCESS_KEY_ID, else unsigned requests.", &c.Archive.S3AccessKeyID},
		{"archive.s3SecretAccessKey", "Secret of archive.s3AccessKeyId (or AWS_SECRET_ACCESS_KEY).", &c.Archive.S3Secret},
		{"archive.s3PathStyle", "Address buckets as path segments (http://endpoint/bucket/key), which most self-hosted S3 servers need.", &c.Archive.S3PathStyle},
		{"archive.localDir", "Folder holding one folder per bucket when no S3 endpoint applies. Empty uses dataDir/recordings.", &c.Archive.LocalDir},
		{"archive.spoolMaxMb", "Most megabytes of recorded media waiting on local disk (dataDir/archive/spool) for S3; past it new segments are lost\nand the recording ends with recording-failed.json.", &c.Archive.SpoolMaxMB},
		{"ingest.transcode", "Transcode STANDARD and ADVANCED channels into IVS's adaptive ladder with ffmpeg. false passes every channel through as BASIC.", &c.Transcode.Enabled},
		{"ingest.ffmpeg", "ffmpeg command the transcoder runs: a path, or a name found on PATH.", &c.Transcode.FFmpeg},
		{"ingest.x264Preset", "x264 preset of transcoded renditions (medium ... ultrafast); a transcoder that falls behind real time restarts one step faster. WHIP's VP8/VP9 → H.264 transcoder uses it too.", &c.Transcode.X264Preset},
		{"archive.spoolMaxAge", "Longest a recorded segment waits in the spool for S3 before it is given up as lost.", &c.Archive.SpoolMaxAge},
		{"archive.originUrl", "Origin (or edge) base URL a separate archive reads streams from when their live registration names no origin.", &c.Archive.OriginURL},
		{"events.webhooks", "Webhooks that receive IVS EventBridge events: comma-separated URLs, each optionally filtered by a fragment that is not sent,\ne.g. https://hooks.example.com/ivs#types=stream-state|recording-state&channels=AbCdef1G2hij.", &c.Monitoring.Webhooks},
		{"events.webhookSecret", "Secret that signs webhook requests (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).\nEmpty uses one generated once, shared over NATS and printed when created.", &c.Monitoring.WebhookSecret},
		{"events.webhookMaxBackoff", "Longest wait between two delivery attempts to a webhook that fails; events wait, in order, until it answers 2xx.", &c.Monitoring.WebhookMaxBackoff},
		{"events.maxAge", "How long the events stream keeps events: a webhook that is down longer loses the oldest.", &c.Monitoring.EventsMaxAge},
		{"events.maxMb", "Most megabytes of events the events stream keeps.", &c.Monitoring.EventsMaxMB},
		{"metrics.record", "Keep the AWS/IVS metric aggregates that GetMetricData answers from (JetStream streams with CloudWatch's retention).", &c.Monitoring.Record},
		{"metrics.listen", "When set (e.g. 10.0.0.5:9464), /metrics is served on this address, for a private network, and no longer on the public listeners;\nso are Go's profiles and traces (/debug/pprof/).", &c.Monitoring.MetricsListen},
		{"metrics.token", "Bearer token Prometheus presents for /metrics (Authorization: Bearer <token>); it lists live channel ids and\ntheir bit rates. Empty on the public listeners uses one generated once, shared over NATS and printed when created;\nempty with metrics.listen asks none there.", &c.Monitoring.MetricsToken},
		{"events.ingestBitrateLimitMbps", "Ingest bit rate (Mb/s, averaged over 5 s) past which a stream gets an IVS Limit Breach event, once (IVS: 8.5). 0 checks nothing.", &c.Monitoring.MaxIngestMbps},
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
	if c.NodeRegion == "" {
		c.NodeRegion = c.Region
	}
	if c.NATSURL == "" && (c.NATS.Replicas > 1 || c.NATS.PlacementTags != "") {
		return fmt.Errorf("nats.replicas above 1 and nats.placementTags need a NATS cluster (nats.url); the embedded server is one node")
	}
	if c.OriginPartHoldBack < 2 {
		return fmt.Errorf("origin.partHoldBack %g: the LL-HLS spec requires at least 2 part targets", c.OriginPartHoldBack)
	}
	if c.GCPercent < 1 {
		return fmt.Errorf("runtime.gcPercent %d must be at least 1 (GOGC=off turns the collector off)", c.GCPercent)
	}
	if c.MemoryLimit < 0 || c.MemoryLimit > 1 {
		return fmt.Errorf("runtime.memoryLimit %g must be a share between 0 and 1", c.MemoryLimit)
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
