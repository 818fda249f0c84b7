package control

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"time"

	"glasscast/auth"
	"glasscast/store"
)

type playbackKeyJSON struct {
	Arn         string            `json:"arn"`
	Name        string            `json:"name"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	Tags        map[string]string `json:"tags"`
}

func (s *Server) playbackKeyOut(k store.PlaybackKeyPair, full bool) playbackKeyJSON {
	out := playbackKeyJSON{Arn: s.arn("ivs", "playback-key", k.ID), Name: k.Name, Tags: tagsOut(k.Tags)}
	if full {
		out.Fingerprint = k.Fingerprint
	}
	return out
}

// parsePlaybackPublicKey accepts what IVS accepts: a PEM public key on the P-384 curve. The
// fingerprint is colon-separated hex of the MD5 of the key's DER, the form IVS displays.
func parsePlaybackPublicKey(material string) (pemOut, fingerprint string, err error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(material)))
	if block == nil {
		return "", "", errValidation("publicKeyMaterial is not a PEM-encoded public key")
	}
	pub, perr := x509.ParsePKIXPublicKey(block.Bytes)
	if perr != nil {
		return "", "", errValidation("publicKeyMaterial is not a valid public key: %v", perr)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P384() {
		return "", "", errValidation("publicKeyMaterial must be an ECDSA public key on curve P-384 (secp384r1)")
	}
	der, _ := x509.MarshalPKIXPublicKey(ec)
	sum := md5.Sum(der)
	hexed := hex.EncodeToString(sum[:])
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(hexed); i += 2 {
		parts = append(parts, hexed[i:i+2])
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), strings.Join(parts, ":"), nil
}

func (s *Server) importPlaybackKeyPair(ctx context.Context, r *request) (any, error) {
	var in struct {
		PublicKeyMaterial *string
		Name              *string
		Tags              map[string]string
	}
	if err := decode(r.body, &in); err != nil {
		return nil, err
	}
	if err := required("publicKeyMaterial", in.PublicKeyMaterial != nil); err != nil {
		return nil, err
	}
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	pemKey, fp, err := parsePlaybackPublicKey(*in.PublicKeyMaterial)
	if err != nil {
		return nil, err
	}
	for _, it := range s.store.PlaybackKeyPairs.List() {
		if it.Value.Fingerprint == fp {
			return nil, errConflict("this public key is already imported as %s", s.arn("ivs", "playback-key", it.Key))
		}
	}
	if q := s.cfg.Quotas.PlaybackKeyPairs; q > 0 && s.store.PlaybackKeyPairs.Len() >= q {
		return nil, errQuota("maximum number of playback key pairs (%d) reached", q)
	}
	k := store.PlaybackKeyPair{ID: auth.NewID(), PublicKeyPEM: pemKey, Fingerprint: fp, Tags: in.Tags, CreatedAt: time.Now().UTC()}
	if in.Name != nil {
		k.Name = *in.Name
	}
	if err := s.store.PlaybackKeyPairs.Create(ctx, k.ID, k); err != nil {
		return nil, err
	}
	return map[string]any{"keyPair": s.playbackKeyOut(k, true)}, nil
}

func (s *Server) playbackKeyByARN(field, v string) (store.PlaybackKeyPair, error) {
	return byARN(s, s.store.PlaybackKeyPairs, "playback-key", "playback key pair", field, v)
}

func (s *Server) getPlaybackKeyPair(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	k, err := s.playbackKeyByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"keyPair": s.playbackKeyOut(k, true)}, nil
}

func (s *Server) listPlaybackKeyPairs(ctx context.Context, r *request) (any, error) {
	return listAll(r, s.store.PlaybackKeyPairs, 100, "keyPairs", func(k store.PlaybackKeyPair) playbackKeyJSON { return s.playbackKeyOut(k, false) })
}

func (s *Server) deletePlaybackKeyPair(ctx context.Context, r *request) (any, error) {
	resARN, err := arnArg(r)
	if err != nil {
		return nil, err
	}
	k, err := s.playbackKeyByARN("arn", resARN)
	if err != nil {
		return nil, err
	}
	if err := s.store.PlaybackKeyPairs.Delete(ctx, k.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound("playback key pair %s not found", resARN)
		}
		return nil, err
	}
	return map[string]any{}, nil
}
