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

// NewSRTPassphrase returns a channel's SRT passphrase: 32 alphanumerics (SRT takes 10 to 79
// characters; this is about 190 bits).
func NewSRTPassphrase() string { return RandomString(32, alnum) }

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
	return LoadOrCreateSecretFile(dir, "credentials.json", "credentials",
		func() (AccessKey, error) { return NewAccessKey(), nil },
		func(k AccessKey) bool { return k.AccessKeyID != "" && k.SecretAccessKey != "" })
}

// LoadOrCreateSecretFile reads the JSON record kept in dir/name, or on first start makes one
// with create and writes it (mode 0600, through a rename so a crash leaves no half file).
// created tells the caller to show it once; a stored record that valid refuses is an error, not
// silently replaced, since others may already use it. what names the record in errors.
func LoadOrCreateSecretFile[T any](dir, name, what string, create func() (T, error), valid func(T) bool) (v T, created bool, err error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &v); err != nil || !valid(v) {
			return v, false, fmt.Errorf("%s file %s is damaged; remove it to create new ones", what, path)
		}
		return v, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return v, false, fmt.Errorf("read %s: %w", what, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return v, false, fmt.Errorf("data dir: %w", err)
	}
	if v, err = create(); err != nil {
		return v, false, fmt.Errorf("create %s: %w", what, err)
	}
	b, _ = json.MarshalIndent(v, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return v, false, fmt.Errorf("write %s: %w", what, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return v, false, fmt.Errorf("write %s: %w", what, err)
	}
	return v, true, nil
}
