package metadata

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		text string
		want error
	}{
		{"", ErrEmpty},
		{"x", nil},
		{strings.Repeat("x", MaxBytes), nil},
		{strings.Repeat("x", MaxBytes+1), ErrTooLarge},
		{strings.Repeat("é", MaxBytes/2) + "x", ErrTooLarge}, // bytes count, not characters
		{"\xff", ErrNotUTF8},
	} {
		if err := Check(tc.text); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Check(%.20q...) = %v, want %v", tc.text, err, tc.want)
		}
	}
}
