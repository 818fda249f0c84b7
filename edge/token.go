package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"glasscast/store"
)

// The rules below are IVS's, from "Generate and Sign IVS Playback Tokens" and "How Session
// Protection Works" in the IVS Low-Latency User Guide (README, "Private channels"):
//   - the JWT (ES384) opens a viewer session on the multivariant playlist; its exp is checked
//     then, "not throughout the stream";
//   - aws:single-use-uuid tokens are "invalidated once [used] to fetch a multivariant playlist
//     and watch a stream": only a request that succeeds spends one;
//   - with aws:single-use-uuid or aws:viewer-id, exp is at most 10 minutes out;
//   - aws:access-control-allow-origin (comma-separated, hostnames may start with "*.") applies
//     to the multivariant playlist only, unless aws:strict-origin-enforcement is true: then to
//     every request, and a request without an Origin header is refused; at most 5 origins then;
//   - IVS writes session-bound URLs, not the JWT, into playlists, and revokes a session used
//     in an "unnatural" way. Ours are derived tokens bound to the viewer's network address.

// denial is why a playback request is refused; it goes to the viewer in a header, never a
// token.
type denial string

func (d denial) Error() string { return string(d) }

// pathKind is what a request asks for; each kind takes its own kind of token.
type pathKind int

const (
	multivariantPath pathKind = iota // the playback URL: the viewer's JWT only
	mediaPlaylistPath
	objectPath // init, segment, part
)

// Scopes of derived tokens.
const (
	scopePlaylists = "p" // media playlists of one session: written into the multivariant
	scopeObjects   = "o" // media objects: written into each media playlist, short-lived
)

// grant is what a verified token allows: one channel, from some web origins, for one viewer
// session. Derived tokens carry it, signed with the edges' shared key.
type grant struct {
	Channel string `json:"c"`
	Key     string `json:"k"` // playback key pair that signed the viewer's JWT
	Session string `json:"s"`
	Viewer  string `json:"v,omitempty"`
	Version int64  `json:"r,omitempty"` // aws:viewer-session-version, for revocation
	Origins string `json:"o,omitempty"` // aws:access-control-allow-origin, "" or "*" for any
	Strict  bool   `json:"x,omitempty"`
	Scope   string `json:"p"`
	Expires int64  `json:"e"`
	Client  string `json:"b,omitempty"` // keyed hash of the viewer's address (Binding)

	once string // aws:single-use-uuid of a JWT, spent when the request succeeds
}

// derivedPrefix marks the edge's own tokens, written into child URIs in place of the viewer's
// JWT: they keep URIs short, carry the session of a single-use JWT, and verify with an HMAC
// instead of an ECDSA signature.
const derivedPrefix = "gc2."

const (
	// pinnedMaxExp is IVS's limit on exp for tokens with aws:single-use-uuid or aws:viewer-id;
	// clockSkew forgives a signer whose clock runs a little ahead of the edge's.
	pinnedMaxExp = 10 * time.Minute
	clockSkew    = 30 * time.Second
	// maxStrictOrigins is IVS's limit on origins under strict enforcement.
	maxStrictOrigins = 5
	maxViewerID      = 40
)

// Binding says how much of a viewer's address a session is bound to. Players send no cookies
// with HLS requests, so the address is the only thing a second client cannot copy from a URL.
type Binding string

const (
	// BindAddress binds to the IPv4 address, or the IPv6 /64 (one subscriber's network, in
	// which privacy extensions rotate addresses).
	BindAddress Binding = "ip"
	// BindSubnet binds to the IPv4 /24 or IPv6 /48: for carrier NAT pools that move one
	// subscriber between neighbouring addresses.
	BindSubnet Binding = "subnet"
	// BindNone does not bind: a leaked session URL then plays anywhere until it expires.
	BindNone Binding = "none"
)

// ParseBinding checks a configured binding.
func ParseBinding(s string) (Binding, error) {
	switch b := Binding(s); b {
	case BindAddress, BindSubnet, BindNone:
		return b, nil
	case "":
		return BindAddress, nil
	}
	return "", fmt.Errorf("token binding %q: want ip, subnet or none", s)
}

// TokenVerifier checks playback tokens for private channels and mints derived ones.
type TokenVerifier struct {
	store   *store.Store
	region  string
	account string
	secret  []byte // HMAC key shared by every edge, kept in the store
	now     func() time.Time
	binding Binding
	// sessionMaxAge bounds a session's media playlist URLs: players reload the URL the
	// multivariant gave them for the whole broadcast, so it cannot be renewed; objectTTL bounds
	// the object URLs that every media playlist renews.
	sessionMaxAge time.Duration
	objectTTL     time.Duration
}

// check verifies the token of a request for a path of kind, from origin (the Origin header)
// and clientIP. It spends nothing: spend does, once the request has succeeded.
func (v *TokenVerifier) check(ctx context.Context, token, channelID string, kind pathKind, origin, clientIP string) (grant, error) {
	if token == "" {
		return grant{}, denial("missing playback token")
	}
	now := v.now()
	var g grant
	var err error
	if strings.HasPrefix(token, derivedPrefix) {
		if kind == multivariantPath {
			return grant{}, denial("session token not accepted on the multivariant playlist: use a playback token (JWT)")
		}
		if g, err = v.verifyDerived(token); err != nil {
			return grant{}, err
		}
		if want := map[pathKind]string{mediaPlaylistPath: scopePlaylists, objectPath: scopeObjects}[kind]; g.Scope != want {
			return grant{}, denial("session token of another scope")
		}
		if now.Unix() >= g.Expires {
			if g.Scope == scopeObjects {
				return grant{}, denial("session token expired: reload the media playlist")
			}
			return grant{}, denial("session expired: reload the playback URL with a new token")
		}
		if g.Client != v.bind(clientIP) {
			return grant{}, denial("session token bound to another client")
		}
	} else if g, err = v.verifyJWT(token, now); err != nil {
		return grant{}, err
	}
	if _, ok := v.store.PlaybackKeyPairs.Get(g.Key); !ok {
		return grant{}, denial("token not signed by an imported playback key (revoked or unknown)")
	}
	if g.Channel != channelID {
		return grant{}, denial("token is for another channel")
	}
	// StartViewerSessionRevocation: every edge holds the revocations, so derived tokens are
	// checked as the JWT was, on every request.
	if g.Viewer != "" {
		if rev, ok := v.store.Revocations.Get(store.RevocationKey(channelID, g.Viewer)); ok && g.Version <= rev {
			return grant{}, denial("viewer session revoked")
		}
	}
	if g.Origins != "" && g.Origins != "*" {
		switch {
		case g.Strict && origin == "":
			return grant{}, denial("strict origin enforcement: request has no Origin header")
		case (g.Strict || kind == multivariantPath) && origin != "" && !originAllowed(g.Origins, origin):
			return grant{}, denial("request origin not allowed by token")
		}
	}
	return g, nil
}

// allowOrigin is the Access-Control-Allow-Origin of an answer to origin for kind: "*" unless
// the token restricts this request's origin, then the origin itself ("" without one).
func (g grant) allowOrigin(kind pathKind, origin string) string {
	if g.Origins == "" || g.Origins == "*" || !g.Strict && kind != multivariantPath {
		return "*"
	}
	return origin
}

// spend marks a single-use JWT used, cluster-wide, so it is refused on every edge after the
// one request that succeeded with it.
func (v *TokenVerifier) spend(ctx context.Context, g grant) error {
	if g.once == "" {
		return nil
	}
	err := v.store.TokenUses.Create(ctx, "u"+sanitizeKey(g.once), v.now().Add(pinnedMaxExp+clockSkew).Unix())
	if errors.Is(err, store.ErrExists) {
		return denial("single-use token already used")
	}
	if err != nil {
		return fmt.Errorf("spend single-use token: %w", err)
	}
	return nil
}

func (v *TokenVerifier) verifyJWT(token string, now time.Time) (grant, error) {
	keys := v.store.PlaybackKeyPairs.List()
	if len(keys) == 0 {
		return grant{}, denial("no playback key pair is imported")
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES384"}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithLeeway(5*time.Second), jwt.WithJSONNumber())
	var claims jwt.MapClaims
	var lastErr error
	var keyID string
	for _, k := range keys {
		keyID = k.Key
		pub, err := parsePublicKey(k.Value.PublicKeyPEM)
		if err != nil {
			continue
		}
		claims = jwt.MapClaims{}
		_, lastErr = parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil })
		if lastErr == nil {
			break
		}
		if !errors.Is(lastErr, jwt.ErrTokenSignatureInvalid) {
			break // malformed or expired: another key will not help
		}
	}
	switch {
	case lastErr == nil:
	case errors.Is(lastErr, jwt.ErrTokenExpired):
		return grant{}, denial("token expired")
	case errors.Is(lastErr, jwt.ErrTokenRequiredClaimMissing):
		return grant{}, denial("token has no exp claim")
	case errors.Is(lastErr, jwt.ErrTokenSignatureInvalid):
		return grant{}, denial("token not signed by an imported playback key (revoked or unknown)")
	case errors.Is(lastErr, jwt.ErrInvalidType):
		return grant{}, denial("malformed token: exp must be a number")
	default:
		return grant{}, denial("malformed token")
	}
	c, err := parseClaims(claims)
	if err != nil {
		return grant{}, err
	}
	prefix := fmt.Sprintf("arn:aws:ivs:%s:%s:channel/", v.region, v.account)
	id, ok := strings.CutPrefix(c.channelARN, prefix)
	if !ok || id == "" {
		return grant{}, denial("token is for another channel")
	}
	if (c.once != "" || c.viewer != "") && c.exp.After(now.Add(pinnedMaxExp+clockSkew)) {
		return grant{}, denial("token with aws:single-use-uuid or aws:viewer-id expires more than 10 minutes out")
	}
	return grant{Channel: id, Key: keyID, Viewer: c.viewer, Version: c.version, Origins: c.origins, Strict: c.strict, once: c.once}, nil
}

// ivsClaims are a JWT's IVS claims, each of the JSON type IVS documents.
type ivsClaims struct {
	channelARN, origins, viewer, once string
	strict                            bool
	version                           int64 // aws:viewer-session-version, 0 when absent
	exp                               time.Time
}

// parseClaims checks claim types: a claim of the wrong type is refused rather than read as
// absent, which would silently drop a restriction (a strict flag written as "true").
func parseClaims(m jwt.MapClaims) (ivsClaims, error) {
	var c ivsClaims
	wrong := func(name, want string) error {
		return denial(fmt.Sprintf("malformed token: %s must be %s", name, want))
	}
	str := func(name string, dst *string) error {
		v, ok := m[name]
		if !ok {
			return nil
		}
		if *dst, ok = v.(string); !ok {
			return wrong(name, "a string")
		}
		return nil
	}
	for name, dst := range map[string]*string{"aws:channel-arn": &c.channelARN, "aws:access-control-allow-origin": &c.origins,
		"aws:viewer-id": &c.viewer, "aws:single-use-uuid": &c.once} {
		if err := str(name, dst); err != nil {
			return c, err
		}
	}
	if c.channelARN == "" {
		return c, denial("malformed token: no aws:channel-arn")
	}
	if v, ok := m["aws:strict-origin-enforcement"]; ok {
		if c.strict, ok = v.(bool); !ok {
			return c, wrong("aws:strict-origin-enforcement", "a JSON boolean (true or false)")
		}
	}
	if _, ok := m["aws:viewer-id"]; ok && (c.viewer == "" || len(c.viewer) > maxViewerID) {
		return c, wrong("aws:viewer-id", "1 to 40 characters")
	}
	if _, ok := m["aws:single-use-uuid"]; ok {
		if _, err := uuid.Parse(c.once); err != nil || len(c.once) != 36 {
			return c, wrong("aws:single-use-uuid", "a UUID")
		}
	}
	if v, ok := m["aws:viewer-session-version"]; ok {
		n, isNum := v.(json.Number)
		version, err := n.Int64()
		if !isNum || err != nil {
			return c, wrong("aws:viewer-session-version", "a 64-bit integer")
		}
		c.version = version
	}
	if v, ok := m["aws:maximum-resolution"]; ok {
		if s, _ := v.(string); s != "SD" && s != "HD" && s != "FULL_HD" {
			return c, wrong("aws:maximum-resolution", `"SD", "HD" or "FULL_HD"`)
		}
	}
	if c.origins != "" && c.origins != "*" {
		n := 0
		for _, o := range strings.Split(c.origins, ",") {
			if o = strings.TrimSpace(o); o == "" || !strings.Contains(o, "://") && o != "*" {
				return c, wrong("aws:access-control-allow-origin", "comma-separated origins (scheme://host[:port])")
			}
			n++
		}
		if c.strict && n > maxStrictOrigins {
			return c, denial("malformed token: at most 5 origins with aws:strict-origin-enforcement")
		}
	}
	exp, err := m.GetExpirationTime()
	if err != nil || exp == nil {
		return c, wrong("exp", "a number")
	}
	c.exp = exp.Time
	return c, nil
}

// originAllowed reports whether origin matches one of list's comma-separated origins: "*"
// matches any, a host starting with "*." any subdomain of the rest.
func originAllowed(list, origin string) bool {
	if origin == "" {
		return false
	}
	origin = strings.ToLower(origin)
	oScheme, oHost, ok := strings.Cut(origin, "://")
	if !ok {
		return false
	}
	for _, p := range strings.Split(list, ",") {
		p = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(p), "/"))
		if p == "*" || p == origin {
			return true
		}
		scheme, suffix, ok := strings.Cut(p, "://*.")
		if ok && scheme == oScheme && strings.HasSuffix(oHost, "."+suffix) && len(oHost) > len(suffix)+1 {
			return true
		}
	}
	return false
}

// bind is the keyed hash of the part of ip a session is bound to ("" with BindNone).
func (v *TokenVerifier) bind(ip string) string {
	if v.binding == BindNone {
		return ""
	}
	prefix := ip
	if a := net.ParseIP(ip); a != nil {
		bits4, bits6 := 32, 64
		if v.binding == BindSubnet {
			bits4, bits6 = 24, 48
		}
		if a4 := a.To4(); a4 != nil {
			prefix = a4.Mask(net.CIDRMask(bits4, 32)).String()
		} else {
			prefix = a.Mask(net.CIDRMask(bits6, 128)).String()
		}
	}
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte("bind\x00" + prefix))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

// sanitizeKey maps a UUID (or anything) onto the KV key alphabet.
func sanitizeKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func parsePublicKey(p string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ec, nil
}

// derive signs g into a token of scope for clientIP, valid for ttl from now.
func (v *TokenVerifier) derive(g grant, scope, clientIP string, ttl time.Duration) string {
	g.Scope, g.Expires, g.Client = scope, v.now().Add(ttl).Unix(), v.bind(clientIP)
	b, _ := json.Marshal(g)
	payload := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte(payload))
	return derivedPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (v *TokenVerifier) verifyDerived(token string) (grant, error) {
	payload, sig, ok := strings.Cut(strings.TrimPrefix(token, derivedPrefix), ".")
	if !ok {
		return grant{}, denial("malformed token")
	}
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte(payload))
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return grant{}, denial("malformed token")
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return grant{}, denial("malformed token")
	}
	var g grant
	if err := json.Unmarshal(b, &g); err != nil {
		return grant{}, denial("malformed token")
	}
	return g, nil
}
