// Package whip accepts broadcasts over WHIP (RFC 9725): a publisher POSTs an SDP offer with
// its stream key as the bearer token and gets the answer and a session URL to DELETE when it
// is done. Media arrives over WebRTC (ICE over one UDP and one TCP port, DTLS-SRTP); H.264
// passes through, VP8 and VP9 are transcoded to H.264 and Opus to AAC by supervised ffmpegs,
// so that every player of an RTMP-fed channel plays a WHIP-fed one.
package whip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"glasscast/auth"
	"glasscast/metrics"
)

// Errors an Ingest's Attach wraps, which decide the HTTP status of a refused offer.
var (
	// ErrForbidden: the stream key is unknown or may not publish this way (403).
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the channel already has a publisher (409).
	ErrConflict = errors.New("conflict")
	// ErrDeleted is what Session.Detach gets when the publisher ended its session with
	// DELETE: an explicit end, after which the stream ends at once (no reconnect grace).
	ErrDeleted = errors.New("deleted by the publisher")
)

// Ingest is the protocol-neutral ingest session API a WHIP publisher attaches to.
type Ingest interface {
	// Authorize checks a stream key before anything is spent on its offer.
	Authorize(key string, secure bool) error
	// Attach authorizes the stream key and attaches a publisher to its channel's broadcast.
	// secure says whether the key arrived encrypted (HTTPS). close disconnects the publisher
	// (StopStream, shutdown); the publisher then detaches its session.
	Attach(ctx context.Context, key string, secure bool, close func(), log *slog.Logger) (Session, error)
}

// Session is one publisher's stream on its channel. Start, the Write methods and Detach are
// called from one goroutine.
type Session interface {
	StreamID() string
	ChannelID() string
	// Start begins the broadcast with the codecs packaged; sentVideo and sentAudio name what
	// the publisher sends where it is transcoded first ("vp8", "vp9", "opus"), else "".
	Start(ctx context.Context, video, audio mp4codecs.Codec, sentVideo, sentAudio string) error
	WriteH264(ctx context.Context, pts, dts time.Duration, au [][]byte) error
	WriteMPEG4Audio(ctx context.Context, pts time.Duration, au []byte) error
	// ExpectKeyFrame tells the session that the publisher is about to be asked for a key frame;
	// it is called before the write of the video frame after which the request is sent.
	ExpectKeyFrame()
	Meter() metrics.IngestMeter
	// Detach ends the session; err is ErrDeleted after the publisher's DELETE.
	Detach(ctx context.Context, err error)
}

// Config configures the WHIP endpoint.
type Config struct {
	// Prefix is the path the handler is mounted at (default "/whip"): offers are POSTed to
	// it, sessions live at Prefix + "/session/<id>".
	Prefix string
	// UDPListen and TCPListen are the single ports ICE uses for every session (a UDP mux and a
	// TCP mux, as in "host:port"); one of them must be set.
	UDPListen, TCPListen string
	// Hosts are the addresses offered as ICE host candidates instead of the machine's own
	// (the public address of a host behind NAT); empty: the interfaces' addresses.
	Hosts []string
	// Timeout ends a session whose publisher sends no media for this long, and one whose ICE
	// never connects (default 10 s).
	Timeout time.Duration
	// KeyFrameInterval is how often the publisher is asked for a key frame (a PLI), so that
	// segments can start on one (default 2 s: the segment target).
	KeyFrameInterval time.Duration
	// FFmpeg is the ffmpeg command that transcodes Opus to AAC and VP8/VP9 to H.264 (default
	// "ffmpeg").
	FFmpeg string
	// X264Preset is the x264 speed of the VP8/VP9 transcoder (default "veryfast").
	X264Preset string
	// MaxSessions bounds WHIP sessions at once (default 100).
	MaxSessions int
}

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = "/whip"
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.KeyFrameInterval <= 0 {
		c.KeyFrameInterval = 2 * time.Second
	}
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.X264Preset == "" {
		c.X264Preset = "veryfast"
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 100
	}
}

// maxOffer bounds an SDP offer's size.
const maxOffer = 64 << 10

// udpReadBuffer is the ICE UDP socket's receive buffer. Every session's media arrives on that
// one socket, and the kernel's usual 208 KB holds well under a second of a few publishers'
// video: when the reader is held off the cores for longer, the kernel drops packets
// (RcvbufErrors), each loss costs a key-frame request, and viewers see a freeze. The kernel
// caps the size at net.core.rmem_max unless the process may lift the cap (setReadBuffer).
const udpReadBuffer = 4 << 20

// Server is the WHIP endpoint: an http.Handler, and an ingest listener whose Serve ends every
// session when its context ends.
type Server struct {
	cfg   Config
	ing   Ingest
	log   *slog.Logger
	api   *webrtc.API
	udp   net.PacketConn
	tcp   net.Listener
	muxes []io.Closer

	mu       sync.Mutex
	sessions map[string]*publisher
	closing  bool
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

// New opens the ICE ports and returns the endpoint.
func New(cfg Config, ing Ingest, log *slog.Logger) (*Server, error) {
	cfg.defaults()
	if cfg.UDPListen == "" && cfg.TCPListen == "" {
		return nil, errors.New("whip: neither a UDP nor a TCP port for ICE")
	}
	s := &Server{cfg: cfg, ing: ing, log: log, sessions: map[string]*publisher{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	se := webrtc.SettingEngine{}
	var types []webrtc.NetworkType
	if cfg.UDPListen != "" {
		conn, err := net.ListenPacket("udp", cfg.UDPListen)
		if err != nil {
			return nil, fmt.Errorf("whip: ICE UDP listen: %w", err)
		}
		s.udp = conn
		if uc, ok := conn.(*net.UDPConn); ok {
			setReadBuffer(uc, udpReadBuffer)
		}
		m := webrtc.NewICEUDPMux(nil, conn)
		s.muxes = append(s.muxes, m)
		se.SetICEUDPMux(m)
		types = append(types, webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6)
	}
	if cfg.TCPListen != "" {
		l, err := net.Listen("tcp", cfg.TCPListen)
		if err != nil {
			s.closeMuxes()
			return nil, fmt.Errorf("whip: ICE TCP listen: %w", err)
		}
		s.tcp = l
		m := newICETCPMux(l, cfg.MaxSessions, cfg.Timeout, log)
		s.muxes = append(s.muxes, m)
		se.SetICETCPMux(m)
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A publisher on this machine (a test, a local encoder) may only reach loopback.
	se.SetIncludeLoopbackCandidate(true)
	se.SetICETimeouts(5*time.Second, cfg.Timeout, 2*time.Second)
	if len(cfg.Hosts) > 0 {
		se.SetNAT1To1IPs(cfg.Hosts, webrtc.ICECandidateTypeHost)
	}
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		s.closeMuxes()
		return nil, err
	}
	ir := &interceptor.Registry{}
	// A missing packet is NACKed at most 25 times (maxLossWait in rounds of nackInterval, the
	// longest any frame is waited for), not for as long as it stays in the receive log,
	// seconds at a publisher's packet rate.
	nacks := webrtc.WithNackGeneratorOptions(nack.GeneratorInterval(nackInterval), nack.GeneratorMaxNacksPerPacket(uint16(maxLossWait/nackInterval)))
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(me, ir, nacks); err != nil {
		s.closeMuxes()
		return nil, fmt.Errorf("whip: interceptors: %w", err)
	}
	s.api = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	return s, nil
}

// registerCodecs offers H.264 (the profiles browsers and OBS send, packetization mode 1),
// which passes through; VP8 and VP9 (profile 0), which a supervised ffmpeg transcodes to
// H.264; and Opus, which becomes AAC.
func registerCodecs(me *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	pt := webrtc.PayloadType(102)
	for _, profile := range []string{"42e01f", "42001f", "4d001f", "640032", "640c1f"} {
		c := webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile, RTCPFeedback: fb}}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("whip: register H.264: %w", err)
		}
		pt++
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}},
		{PayloadType: 98, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: fb}},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("whip: register %s: %w", c.MimeType, err)
		}
	}
	opus := webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("whip: register Opus: %w", err)
	}
	return nil
}

// preferH264 moves H.264 to the front of every video section of an offer: pion answers in
// the offer's order and a browser sends the answer's first codec, so a publisher that can
// send H.264 does, and costs no transcoding; VP8 or VP9 only when it offers nothing else.
func preferH264(offer string) string {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(offer) != nil {
		return offer // SetRemoteDescription says what is wrong with it
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		h264 := map[string]bool{}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, codec, _ := strings.Cut(a.Value, " ")
			if name, _, _ := strings.Cut(codec, "/"); strings.EqualFold(name, "H264") {
				h264[pt] = true
			}
		}
		slices.SortStableFunc(m.MediaName.Formats, func(a, b string) int {
			switch {
			case h264[a] && !h264[b]:
				return -1
			case h264[b] && !h264[a]:
				return 1
			}
			return 0
		})
	}
	out, err := sd.Marshal()
	if err != nil {
		return offer
	}
	return string(out)
}

func (s *Server) closeMuxes() {
	for _, m := range s.muxes {
		_ = m.Close()
	}
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
}

// Addrs are the ICE ports' addresses (UDP, then TCP; nil where disabled).
func (s *Server) Addrs() (udp, tcp net.Addr) {
	if s.udp != nil {
		udp = s.udp.LocalAddr()
	}
	if s.tcp != nil {
		tcp = s.tcp.Addr()
	}
	return udp, tcp
}

// Serve runs until ctx ends, then ends every session and closes the ICE ports.
func (s *Server) Serve(ctx context.Context) error {
	<-ctx.Done()
	s.mu.Lock()
	s.closing = true
	ps := make([]*publisher, 0, len(s.sessions))
	for _, p := range s.sessions {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		p.end(errors.New("ingest shutting down"))
	}
	s.wg.Wait()
	s.cancel()
	s.closeMuxes()
	return nil
}

// ServeHTTP serves the WHIP endpoint and its sessions.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browsers publish from other origins (a page on another host): WHIP is CORS-enabled. The
	// stream key is a bearer token, never a cookie, so this opens nothing to other sites.
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch")
	rest, ok := strings.CutPrefix(r.URL.Path, s.cfg.Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		switch r.Method {
		case http.MethodOptions:
			h.Set("Accept-Post", "application/sdp")
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPost:
			s.offer(w, r)
		default:
			h.Set("Allow", "POST, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
		return
	}
	id, ok := strings.CutPrefix(rest, "session/")
	s.mu.Lock()
	p := s.sessions[id]
	s.mu.Unlock()
	if !ok || p == nil {
		http.Error(w, "no such WHIP session", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		p.end(nil)
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		s.patch(w, r, p)
	default:
		h.Set("Allow", "PATCH, DELETE, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// patch takes trickled ICE candidates (RFC 8840 fragments). ICE restarts are not supported:
// a publisher whose network changed starts a new session, which continues the stream
// session within the reconnect grace.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, p *publisher) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/trickle-ice-sdpfrag" {
		http.Error(w, "PATCH takes application/trickle-ice-sdpfrag", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOffer))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	ufrag := p.iceUfrag()
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok && v != ufrag {
			http.Error(w, "ICE restarts are not supported: start a new session", http.StatusUnprocessableEntity)
			return
		}
	}
	for _, line := range strings.Split(string(body), "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:"); ok {
			if err := p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: "candidate:" + c}); err != nil {
				p.log.Debug("whip: trickled candidate refused", "err", err)
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// offer answers a publisher's SDP offer and starts its session.
func (s *Server) offer(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/sdp" {
		http.Error(w, "the offer must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if key = strings.TrimSpace(key); !ok || key == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glasscast whip"`)
		http.Error(w, "the stream key goes in Authorization: Bearer <stream key>", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOffer+1))
	if err != nil || len(body) > maxOffer {
		http.Error(w, "the offer is too large or unreadable", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	full, closing := len(s.sessions) >= s.cfg.MaxSessions, s.closing
	s.mu.Unlock()
	if full || closing {
		http.Error(w, "too many WHIP sessions", http.StatusServiceUnavailable)
		return
	}
	secure := r.TLS != nil
	id := auth.RandomString(24, "abcdefghijklmnopqrstuvwxyz0123456789")
	log := s.log.With("remote", r.RemoteAddr, "protocol", "whip", "whipSession", id)
	if err := s.ing.Authorize(key, secure); err != nil {
		s.refuse(w, log, err)
		return
	}
	// The answer comes first, so that an offer that cannot be answered starts no stream
	// session; no media can flow before the publisher has the answer.
	p := newPublisher(s, id, log)
	answer, err := p.negotiate(string(body))
	if err != nil {
		log.Warn("whip offer refused", "err", err)
		p.closePeer()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sess, err := s.ing.Attach(r.Context(), key, secure, func() { p.end(errors.New("disconnected by the ingest")) }, log)
	if err != nil {
		p.closePeer()
		s.refuse(w, log, err)
		return
	}
	p.sess = sess
	p.log = log.With("channel", sess.ChannelID(), "stream", sess.StreamID())
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		p.closePeer()
		sess.Detach(context.Background(), errors.New("ingest shutting down"))
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.sessions[id] = p
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		err := p.run()
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
		p.log.Info("whip publisher disconnected", "reason", errString(err))
	}()
	p.log.Info("whip publisher connected")
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", s.cfg.Prefix+"/session/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// refuse answers an offer the ingest refused.
func (s *Server) refuse(w http.ResponseWriter, log *slog.Logger, err error) {
	log.Warn("whip publish refused", "reason", err.Error())
	code := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	}
	http.Error(w, err.Error(), code)
}

func errString(err error) string {
	if errors.Is(err, ErrDeleted) {
		return "ended by the publisher (DELETE)"
	}
	return err.Error()
}
