// Package token mints and opens IVS Chat tokens: the claims a backend asks CreateChatToken for,
// sealed with AES-256-GCM under a key every node shares. A token is opaque to its holder, cannot be
// forged or altered, and is spelled in base64url so it travels as a WebSocket subprotocol.
package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Capabilities a token may grant; receiving needs none.
const (
	SendMessage    = "SEND_MESSAGE"
	DeleteMessage  = "DELETE_MESSAGE"
	DisconnectUser = "DISCONNECT_USER"
)

// Claims are what a token carries.
type Claims struct {
	// ID names the token for its single-use claim; it is random, not secret.
	ID             string            `json:"i"`
	RoomID         string            `json:"r"`
	UserID         string            `json:"u"`
	Attributes     map[string]string `json:"a,omitempty"`
	Capabilities   []string          `json:"c,omitempty"`
	TokenExpires   time.Time         `json:"te"`
	SessionExpires time.Time         `json:"se"`
}

// Can reports whether the claims grant capability c.
func (c *Claims) Can(capability string) bool {
	for _, x := range c.Capabilities {
		if x == capability {
			return true
		}
	}
	return false
}

// prefix versions the format, so a key or cipher change can be told apart.
const prefix = "gc1."

// aad binds sealed bytes to their use: a value sealed for something else never opens as a token.
var aad = []byte("glasscast ivschat token")

// MaxLen bounds a token; claims are limited (user id 128 code points, attributes 1 KB), so a
// longer subprotocol is refused before any work is done on it.
const MaxLen = 4096

// Errors from Open; callers answer both with 401.
var (
	ErrInvalid = errors.New("chat token is not valid")
	ErrExpired = errors.New("chat token has expired")
)

// Sealer mints and opens tokens with one key.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("chat token key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("chat token key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// NewID returns a fresh token ID.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Mint seals claims into a token. A missing ID is filled in.
func (s *Sealer) Mint(c Claims) (string, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode chat token: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("chat token nonce: %w", err)
	}
	sealed := s.aead.Seal(nonce, nonce, plain, aad)
	return prefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open checks a token and returns its claims. Expiry is judged against now.
func (s *Sealer) Open(tok string, now time.Time) (*Claims, error) {
	if len(tok) > MaxLen {
		return nil, ErrInvalid
	}
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok {
		return nil, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, ErrInvalid
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], aad)
	if err != nil {
		return nil, ErrInvalid
	}
	var c Claims
	if err := json.Unmarshal(plain, &c); err != nil || c.ID == "" || c.RoomID == "" || c.UserID == "" {
		return nil, ErrInvalid
	}
	if !now.Before(c.TokenExpires) {
		return nil, ErrExpired
	}
	return &c, nil
}
