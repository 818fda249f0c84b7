package metadata

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// The rules of timed metadata, IVS's PutMetadata limits. They live here, with the encoding,
// so the API and in-band RTMP metadata (onTextData, onCuePoint) obey the same ones.
const (
	// MaxBytes is the largest payload, in bytes.
	MaxBytes = 1024
	// RatePerSecond is how many payloads a channel accepts per second, from the API and the
	// publisher's in-band metadata together.
	RatePerSecond = 5
)

// Errors of Check.
var (
	ErrEmpty    = errors.New("metadata is empty")
	ErrTooLarge = errors.New("metadata is too large")
	ErrNotUTF8  = errors.New("metadata is not valid UTF-8")
)

// Check reports whether text may be inserted as timed metadata: 1 to MaxBytes bytes of UTF-8.
// The error wraps ErrEmpty, ErrTooLarge or ErrNotUTF8.
func Check(text string) error {
	switch {
	case len(text) == 0:
		return ErrEmpty
	case len(text) > MaxBytes:
		return fmt.Errorf("%w: at most %d bytes (got %d)", ErrTooLarge, MaxBytes, len(text))
	case !utf8.ValidString(text):
		return ErrNotUTF8
	}
	return nil
}
