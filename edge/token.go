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
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"glasscast/store"
)

// denial is why a playback request is refused; it goes to the viewer in a header, never a
// token.
type denial string

func (d denial) Error() string { return string(d) }

// viewerGrant is what a verified token allows: one channel until an expiry, optionally only
// from one web origin, for one viewer session.
type viewerGrant struct {
	Channel string `json:"c"`
	Expires int64  `json:"e"`
	Origin  string `json:"o,omitempty"` // required Origin header when strict
	Viewer  string `json:"v,omitempty"`
	Session string `json:"s"`
	Key     string `json:"k"` // playback key pair that signed the viewer's JWT
}

// derivedPrefix marks the edge's own short tokens, written into child URIs in place of the
// viewer's JWT: they keep URIs short, make single-use JWTs usable for a whole session, and
// verify with an HMAC instead of an ECDSA signature.
const derivedPrefix = "gc1."

// TokenVerifier checks playback tokens for private channels.
type TokenVerifier struct {
	store   *store.Store
	region  string
	account string
	secret  []byte // HMAC key shared by every edge, kept in the store
	now     func() time.Time
}

// verify checks a token (the viewer's JWT or a derived token) for channelID and the request's
// Origin header.
func (v *TokenVerifier) verify(ctx context.Context, token, channelID, origin string) (viewerGrant, error) {
	if token == "" {
		return viewerGrant{}, denial("missing playback token")
	}
	var g viewerGrant
	var err error
	if strings.HasPrefix(token, derivedPrefix) {
		g, err = v.verifyDerived(token)
	} else {
		g, err = v.verifyJWT(ctx, token)
	}
	if err != nil {
		return viewerGrant{}, err
	}
	if _, ok := v.store.PlaybackKeyPairs.Get(g.Key); !ok {
		return viewerGrant{}, denial("token not signed by an imported playback key (revoked or unknown)")
	}
	if g.Channel != channelID {
		return viewerGrant{}, denial("token is for another channel")
	}
	if v.now().Unix() >= g.Expires {
		return viewerGrant{}, denial("token expired")
	}
	if g.Origin != "" && origin != g.Origin {
		return viewerGrant{}, denial("request origin not allowed by token")
	}
	return g, nil
}

func (v *TokenVerifier) verifyJWT(ctx context.Context, token string) (viewerGrant, error) {
	keys := v.store.PlaybackKeyPairs.List()
	if len(keys) == 0 {
		return viewerGrant{}, denial("no playback key pair is imported")
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES384"}), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(v.now), jwt.WithLeeway(5*time.Second))
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
		return viewerGrant{}, denial("token expired")
	case errors.Is(lastErr, jwt.ErrTokenRequiredClaimMissing):
		return viewerGrant{}, denial("token has no exp claim")
	case errors.Is(lastErr, jwt.ErrTokenSignatureInvalid):
		return viewerGrant{}, denial("token not signed by an imported playback key (revoked or unknown)")
	default:
		return viewerGrant{}, denial("malformed token")
	}
	arn, _ := claims["aws:channel-arn"].(string)
	prefix := fmt.Sprintf("arn:aws:ivs:%s:%s:channel/", v.region, v.account)
	id, ok := strings.CutPrefix(arn, prefix)
	if !ok || id == "" {
		return viewerGrant{}, denial("token is for another channel")
	}
	exp, _ := claims.GetExpirationTime()
	g := viewerGrant{Channel: id, Expires: exp.Unix(), Key: keyID}
	g.Viewer, _ = claims["aws:viewer-id"].(string)
	if strict, _ := claims["aws:strict-origin-enforcement"].(bool); strict {
		g.Origin, _ = claims["aws:access-control-allow-origin"].(string)
		if g.Origin == "" || g.Origin == "*" {
			g.Origin = ""
		}
	}
	if once, _ := claims["aws:single-use-uuid"].(string); once != "" {
		// Claimed cluster-wide, so the same token is refused on every edge after one use.
		if err := v.store.TokenUses.Create(ctx, "u"+sanitizeKey(once), exp.Unix()); err != nil {
			if errors.Is(err, store.ErrExists) {
				return viewerGrant{}, denial("single-use token already used")
			}
			return viewerGrant{}, fmt.Errorf("claim single-use token: %w", err)
		}
	}
	return g, nil
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

// derive signs a grant into a short token for child URIs.
func (v *TokenVerifier) derive(g viewerGrant) string {
	b, _ := json.Marshal(g)
	payload := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte(payload))
	return derivedPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (v *TokenVerifier) verifyDerived(token string) (viewerGrant, error) {
	payload, sig, ok := strings.Cut(strings.TrimPrefix(token, derivedPrefix), ".")
	if !ok {
		return viewerGrant{}, denial("malformed token")
	}
	m := hmac.New(sha256.New, v.secret)
	m.Write([]byte(payload))
	want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return viewerGrant{}, denial("malformed token")
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return viewerGrant{}, denial("malformed token")
	}
	var g viewerGrant
	if err := json.Unmarshal(b, &g); err != nil {
		return viewerGrant{}, denial("malformed token")
	}
	return g, nil
}
