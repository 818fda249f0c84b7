// Package control is Glasscast's management API: the AWS IVS (and IVS Chat) REST-JSON
// operations, verified with SigV4 and answered from the shared store, so AWS's own CLI and
// SDKs work against it with only the endpoint changed.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"glasscast/auth"
	"glasscast/ingestctl"
	"glasscast/store"
)

// Quotas bound what one account may create, answered with ServiceQuotaExceededException.
type Quotas struct {
	Channels                int
	StreamKeysPerChannel    int
	PlaybackKeyPairs        int
	RecordingConfigurations int
	// PlaybackRestrictionPolicies bounds playback restriction policies; 0 means unlimited.
	PlaybackRestrictionPolicies int
	// AdConfigurations bounds ad configurations; 0 means unlimited.
	AdConfigurations int

	// IVS Chat; 0 means unlimited.
	ChatRooms                 int
	ChatLoggingConfigurations int
	// ChatThrottle enforces IVS Chat's per-operation TPS quotas with ThrottlingException.
	ChatThrottle bool
}

// Config is the control API's configuration.
type Config struct {
	Region  string
	Account string
	// Secret returns the secret access key of an access key ID.
	Secret func(accessKeyID string) (string, bool)
	// PlaybackBaseURL prefixes playback URLs ("https://live.example.com"). Empty uses the
	// scheme and host the API request arrived on.
	PlaybackBaseURL string
	// IngestHost is the host publishers connect to. Empty uses the API request's host name.
	IngestHost string
	// SRTEndpoint is returned as a channel's srt.endpoint: IVS gives a host name, whose port
	// 9000 encoders add. Empty uses the ingest host, with SRTPort appended unless it is 9000.
	SRTEndpoint string
	SRTPort     string
	Quotas      Quotas
	// MaxBodyBytes bounds a request body; larger requests are refused before they are read
	// (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Chat mints chat tokens and reaches live rooms; nil answers those IVS Chat operations with an error.
	Chat ChatBackend
	// Metrics answers CloudWatch's GetMetricData and ListMetrics (service monitoring); nil
	// answers them with ServiceUnavailable.
	Metrics MetricsReader
	// CountryLookup says the edges can tell a viewer's country (a trusted header or a
	// geolocation database); without it a playback restriction policy naming countries is refused.
	CountryLookup bool
}

// DefaultMaxBodyBytes bounds an API request body unless Config.MaxBodyBytes says otherwise.
// IVS's largest inputs (an imported public key, 50 tags, 1 KB of metadata) are far below it.
const DefaultMaxBodyBytes = 1 << 20

// Broadcasts reaches the ingest that holds a channel's publisher; its errors are ingestctl's.
type Broadcasts interface {
	// Stop disconnects the channel's publisher.
	Stop(ctx context.Context, channelID string) error
	// PutMetadata inserts timed metadata into the channel's stream.
	PutMetadata(ctx context.Context, channelID, metadata string) error
	// InsertAdBreak starts an ad break in the channel's stream.
	InsertAdBreak(ctx context.Context, channelID string, ab ingestctl.AdBreak) error
}

// Server answers the control API.
type Server struct {
	cfg        Config
	store      *store.Store
	broadcasts Broadcasts
	viewers    func(channelID string) int64
	sig        *auth.SigV4Verifier
	log        *slog.Logger
	ivs        map[string]op
	ivschat    map[string]op

	// refs serializes, on this node, the operations that make one record refer to another
	// (a channel to its recording, ad or playback restriction configuration or to a new stream
	// key, a room to its logging configurations) with those that delete a record if nothing
	// refers to it. Each side checks the other's records in the replica and then writes; without
	// the lock both checks can pass and leave a reference to a deleted record. Held only across
	// that check and the store writes that follow it, never across a call to another service,
	// and never taken twice on one path.
	//
	// Across nodes it does not help: a delete on one node can still race an attach on another,
	// as the store has no transaction spanning two tables. UpdateChannel therefore checks only
	// the references it sets, so a reference left dangling that way does not block later updates.
	refs sync.Mutex
}

type op func(ctx context.Context, r *request) (any, error)

// request is what an operation sees of an HTTP request.
type request struct {
	body    []byte
	query   map[string][]string
	resARN  string // the {resourceArn} path element of /tags/ operations, decoded
	baseURL string // scheme://host the request arrived on
	host    string // host name without port
}

// New returns a Server. viewers reports a channel's current viewer count (nil: always 0).
func New(cfg Config, st *store.Store, b Broadcasts, viewers func(string) int64, log *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if viewers == nil {
		viewers = func(string) int64 { return 0 }
	}
	s := &Server{cfg: cfg, store: st, broadcasts: b, viewers: viewers, log: log,
		sig: &auth.SigV4Verifier{Secret: cfg.Secret, Region: cfg.Region}}
	s.ivs = map[string]op{
		"POST /CreateChannel":                   s.createChannel,
		"POST /GetChannel":                      s.getChannel,
		"POST /BatchGetChannel":                 s.batchGetChannel,
		"POST /ListChannels":                    s.listChannels,
		"POST /UpdateChannel":                   s.updateChannel,
		"POST /DeleteChannel":                   s.deleteChannel,
		"POST /CreateStreamKey":                 s.createStreamKey,
		"POST /GetStreamKey":                    s.getStreamKey,
		"POST /BatchGetStreamKey":               s.batchGetStreamKey,
		"POST /ListStreamKeys":                  s.listStreamKeys,
		"POST /DeleteStreamKey":                 s.deleteStreamKey,
		"POST /ImportPlaybackKeyPair":           s.importPlaybackKeyPair,
		"POST /GetPlaybackKeyPair":              s.getPlaybackKeyPair,
		"POST /ListPlaybackKeyPairs":            s.listPlaybackKeyPairs,
		"POST /DeletePlaybackKeyPair":           s.deletePlaybackKeyPair,
		"POST /CreateRecordingConfiguration":    s.createRecordingConfiguration,
		"POST /GetRecordingConfiguration":       s.getRecordingConfiguration,
		"POST /ListRecordingConfigurations":     s.listRecordingConfigurations,
		"POST /DeleteRecordingConfiguration":    s.deleteRecordingConfiguration,
		"POST /CreatePlaybackRestrictionPolicy": s.createPlaybackPolicy,
		"POST /GetPlaybackRestrictionPolicy":    s.getPlaybackPolicy,
		"POST /UpdatePlaybackRestrictionPolicy": s.updatePlaybackPolicy,
		"POST /DeletePlaybackRestrictionPolicy": s.deletePlaybackPolicy,
		"POST /ListPlaybackRestrictionPolicies": s.listPlaybackPolicies,
		"POST /StartViewerSessionRevocation":    s.startViewerSessionRevocation,
		"POST /GetStream":                       s.getStream,
		"POST /ListStreams":                     s.listStreams,
		"POST /StopStream":                      s.stopStream,
		"POST /GetStreamSession":                s.getStreamSession,
		"POST /ListStreamSessions":              s.listStreamSessions,
		"POST /PutMetadata":                     s.putMetadata,
		"POST /CreateAdConfiguration":           s.createAdConfiguration,
		"POST /GetAdConfiguration":              s.getAdConfiguration,
		"POST /ListAdConfigurations":            s.listAdConfigurations,
		"POST /DeleteAdConfiguration":           s.deleteAdConfiguration,
		"POST /InsertAdBreak":                   s.insertAdBreak,
		"POST /tags":                            s.tagResource,
		"DELETE /tags":                          s.untagResource,
		"GET /tags":                             s.listTagsForResource,
	}
	s.ivschat = s.ivschatRoutes()
	return s
}

// MaxBodyBytes is the largest request body the API reads. A listener that buffers bodies
// before the API sees them reads no more, and answers a larger one with RefuseTooLarge.
func (s *Server) MaxBodyBytes() int64 { return s.cfg.MaxBodyBytes }

// RefuseTooLarge answers, as AWS does, a request whose body is over MaxBodyBytes.
func (s *Server) RefuseTooLarge(w http.ResponseWriter) {
	w.Header().Set("x-amzn-RequestId", uuid.NewString())
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Connection", "close") // the rest of the body is not read
	s.writeError(w, errTooLarge(s.cfg.MaxBodyBytes))
}

// noContent marks operations that answer 204 with no body, as IVS does.
type noContent struct{}

// Handles reports whether a request is for the control API (as opposed to playback or chat on
// the same port): it carries an AWS signature or targets an operation path.
func (s *Server) Handles(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		return true
	}
	_, ok := s.ivs[routeKey(r)]
	_, chat := s.ivschat[routeKey(r)]
	return ok || chat
}

// services are the signing services whose operations answer r's method and path: the
// service a credential must be scoped to (both IVS and IVS Chat have /tags). None for a path
// no service answers, which dispatch then refuses as an unknown operation.
func (s *Server) services(r *http.Request) []string {
	key := routeKey(r)
	_, ivs := s.ivs[key]
	_, chat := s.ivschat[key]
	switch {
	case ivs && chat:
		return []string{"ivs", "ivschat"}
	case ivs:
		return []string{"ivs"}
	case chat:
		return []string{"ivschat"}
	case isCloudWatch(r):
		return []string{"monitoring"}
	}
	return nil
}

// isCloudWatch reports whether r has the shape of a CloudWatch call: awsQuery and JSON 1.0
// post to the root, RPC v2 CBOR to its operation path.
func isCloudWatch(r *http.Request) bool {
	return r.Method == http.MethodPost && (r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, cwCBORPath))
}

func routeKey(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/tags/") {
		p = "/tags"
	}
	return r.Method + " " + p
}

// ServeHTTP verifies the signature, dispatches to the operation and writes its answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("x-amzn-RequestId", uuid.NewString())
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "x-amzn-RequestId,x-amzn-ErrorType,x-amz-apigw-id,Date")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET,POST,DELETE,OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "*")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	code, status := s.serve(w, r)
	s.log.Debug("api", "method", r.Method, "path", r.URL.Path, "status", status, "error", code, "dur", time.Since(start))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) (string, int) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return s.refuseBody(w, r)
	}
	// The body grows as it arrives: an announced length allocates nothing before the bytes do.
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return s.writeError(w, errValidation("reading request body: %v", err))
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return s.refuseBody(w, r)
	}
	id, err := s.sig.Verify(r, body, s.services(r)...)
	if err != nil {
		var se *auth.SigV4Error
		if errors.As(err, &se) {
			return s.writeError(w, errAccessDenied(se.Code, se.Message))
		}
		return s.writeError(w, errAccessDenied("AccessDeniedException", "access denied"))
	}
	return s.dispatch(w, r, body, id.Service)
}

// ServeOperation answers an IVS ("ivs"), IVS Chat ("ivschat") or CloudWatch ("monitoring") operation for a caller the
// embedding server authenticated another way (the web console's session cookie): the same
// handlers, limits and AWS-shaped answers as a SigV4 call, with r's method and path naming
// the operation ("POST /CreateChannel").
func (s *Server) ServeOperation(w http.ResponseWriter, r *http.Request, service string) {
	w.Header().Set("x-amzn-RequestId", uuid.NewString())
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.refuseBody(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		s.writeError(w, errValidation("reading request body: %v", err))
		return
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		s.refuseBody(w, r)
		return
	}
	if service != "ivs" && service != "ivschat" && service != "monitoring" {
		s.writeError(w, &apiError{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: "unknown service " + service})
		return
	}
	code, status := s.dispatch(w, r, body, service)
	s.log.Debug("console api", "method", r.Method, "path", r.URL.Path, "status", status, "error", code)
}

// dispatch runs the operation r names for an authenticated caller of service.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, body []byte, service string) (string, int) {
	var routes map[string]op
	switch service {
	case "ivs":
		routes = s.ivs
	case "ivschat":
		routes = s.ivschat
	case "monitoring":
		return s.serveCloudWatch(w, r, body)
	default:
		return s.writeError(w, &apiError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: "this endpoint does not serve the signing service " + service})
	}
	handler, ok := routes[routeKey(r)]
	if !ok {
		return s.writeError(w, &apiError{Status: http.StatusNotFound, Code: "UnknownOperationException", Message: "unknown operation " + r.Method + " " + r.URL.Path})
	}
	req := &request{body: body, query: r.URL.Query(), baseURL: requestBase(r), host: hostOnly(r.Host)}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/tags/"); ok {
		req.resARN = rest // r.URL.Path is already percent-decoded once, which yields the ARN
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out, err := handler(ctx, req)
	if err != nil {
		ae := asAPIError(err)
		if ae.Status >= 500 {
			s.log.Error("api operation failed", "path", r.URL.Path, "err", err)
		}
		return s.writeError(w, ae)
	}
	if _, ok := out.(noContent); ok {
		w.WriteHeader(http.StatusNoContent)
		return "", http.StatusNoContent
	}
	b, err := json.Marshal(out)
	if err != nil {
		return s.writeError(w, errInternal(err))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return "", http.StatusOK
}

// refuseBody answers an over-size body and, on HTTP/1, closes the connection rather than read
// the rest (on HTTP/2 only the stream is reset; Connection: close would end every stream).
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request) (string, int) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	return s.writeError(w, errTooLarge(s.cfg.MaxBodyBytes))
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) (string, int) {
	body := map[string]any{"message": e.Message, "exceptionMessage": e.Message}
	for k, v := range e.Fields {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.Code)
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
	return e.Code, e.Status
}

func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
