package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// streamKeyDigestPrefix marks StreamKeyValues keys that are digests. Keys written before
// digests existed were the stream key values themselves ("sk_<region>_..."); Open rewrites them.
const streamKeyDigestPrefix = "h_"

// StreamKeyDigest is the StreamKeyValues key of a stream key value: an HMAC-SHA256 of the value
// under a deployment secret. Whoever can list the bucket learns digests, which neither reveal a
// value nor let anyone test guesses without the secret.
func (s *Store) StreamKeyDigest(value string) string {
	m := hmac.New(sha256.New, s.streamKeyMAC)
	m.Write([]byte(value))
	return streamKeyDigestPrefix + hex.EncodeToString(m.Sum(nil))
}

// openStreamKeyIndex loads the digest secret and rewrites stream key values kept as plain keys
// by earlier versions into digests, so an existing data folder keeps its keys. Every process
// may run it at once: creates that lose and deletes of what another process deleted are fine.
func (s *Store) openStreamKeyIndex(ctx context.Context) error {
	v, err := s.Secret(ctx, "stream-key-digest-1", func() string {
		key := make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails on supported platforms
		return base64.StdEncoding.EncodeToString(key)
	})
	if err != nil {
		return fmt.Errorf("stream key digest secret: %w", err)
	}
	if s.streamKeyMAC, err = base64.StdEncoding.DecodeString(v); err != nil || len(s.streamKeyMAC) != 32 {
		return errors.New("stream key digest secret is damaged")
	}
	migrated := false
	for _, it := range s.StreamKeyValues.List() {
		if strings.HasPrefix(it.Key, streamKeyDigestPrefix) {
			continue
		}
		migrated = true
		err := s.StreamKeyValues.Create(ctx, s.StreamKeyDigest(it.Key), it.Value)
		if err != nil && !errors.Is(err, ErrExists) {
			return fmt.Errorf("migrate stream key %s to a digest: %w", it.Value, err)
		}
		if err := s.StreamKeyValues.Delete(ctx, it.Key); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove plain stream key %s: %w", it.Value, err)
		}
	}
	if migrated {
		// A delete leaves a marker under the old key, which is the value itself.
		if err := s.StreamKeyValues.purgeDeleteMarkers(ctx); err != nil {
			return fmt.Errorf("remove plain stream keys: %w", err)
		}
	}
	return nil
}
