package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Webhook requests are signed as the Standard Webhooks specification (standardwebhooks.com)
// says, so receivers can verify them with that project's libraries in many languages:
//
//	webhook-id:        the event id
//	webhook-timestamp: Unix seconds of the attempt
//	webhook-signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
//
// The key is the secret's bytes: secrets are spelled "whsec_" + base64.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	secretPrefix    = "whsec_"
)

// NewSecret returns a random signing secret in the whsec_ spelling.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey decodes a whsec_ secret; any other string is used as raw key bytes.
func secretKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil && len(k) > 0 {
			return k
		}
	}
	return []byte(secret)
}

// Sign returns the webhook-signature value of a request.
func Sign(secret, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secretKey(secret))
	fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a signed request as a receiver would: one of the space-separated v1
// signatures must match, and the timestamp must be within tolerance of now (replay guard).
func Verify(secret string, header func(string) string, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsStr, sigs := header(HeaderID), header(HeaderTimestamp), header(HeaderSignature)
	if id == "" || tsStr == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", tsStr, err)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %s is %v away from now", ts.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	want := Sign(secret, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}
