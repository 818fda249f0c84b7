// Package auth holds Glasscast's secrets and the checks that use them: access keys and AWS
// Signature Version 4 for the control API, random resource IDs and stream keys.
package auth

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomString returns n characters drawn uniformly from alphabet with a CSPRNG.
func RandomString(n int, alphabet string) string {
	out := make([]byte, n)
	buf := make([]byte, n*2)
	limit := 256 - 256%len(alphabet) // reject bytes that would bias the draw
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS has no entropy: nothing is safe
		}
		for _, c := range buf {
			if i == n {
				break
			}
			if int(c) < limit {
				out[i] = alphabet[int(c)%len(alphabet)]
				i++
			}
		}
	}
	return string(out)
}

// NewID returns a resource ID in IVS's style: 12 alphanumeric characters.
func NewID() string { return RandomString(12, alnum) }

// NewStreamID returns a stream session ID: "st-" and 23 alphanumerics (26 characters, as IVS).
func NewStreamID() string { return "st-" + RandomString(23, alnum) }

// NewStreamKeyValue returns a stream key secret: "sk_<region>_" and 36 alphanumerics (214 bits).
func NewStreamKeyValue(region string) string { return "sk_" + region + "_" + RandomString(36, alnum) }

// NewSecret returns a shared secret between nodes: 43 alphanumerics (256 bits).
func NewSecret() string { return RandomString(43, alnum) }

// AccessKey is one API credential.
type AccessKey struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// NewAccessKey returns a fresh credential shaped like AWS's.
func NewAccessKey() AccessKey {
	return AccessKey{
		AccessKeyID:     "AKGC" + RandomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: RandomString(40, alnum+"+/"),
	}
}

// LoadOrCreateAccessKey reads the credential stored in dir, creating one (mode 0600) on first
// start. created tells the caller to show it once.
func LoadOrCreateAccessKey(dir string) (k AccessKey, created bool, err error) {
	path := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &k); err != nil || k.AccessKeyID == "" || k.SecretAccessKey == "" {
			return k, false, fmt.Errorf("credentials file %s is damaged; remove it to create a new key", path)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, fmt.Errorf("read credentials: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return k, false, fmt.Errorf("data dir: %w", err)
	}
	k = NewAccessKey()
	b, _ = json.MarshalIndent(k, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return k, false, fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return k, false, fmt.Errorf("write credentials: %w", err)
	}
	return k, true, nil
}
