package rtmp

import (
	"strings"
	"testing"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"glasscast/metadata"
)

// TestInbandText: onTextData's text member is the cue as is; anything else is rendered as
// JSON, whose size the session then checks against PutMetadata's limit.
func TestInbandText(t *testing.T) {
	if got := inbandText("onTextData", []any{amf0.Object{{Key: "text", Value: "hello"}}}); got != "hello" {
		t.Errorf("onTextData text = %q", got)
	}
	if got := inbandText("onCuePoint", []any{amf0.Object{{Key: "name", Value: "ad"}}}); got != `{"name":"ad"}` {
		t.Errorf("onCuePoint = %q", got)
	}
	big := inbandText("onCuePoint", []any{amf0.Object{{Key: "name", Value: strings.Repeat("y", metadata.MaxBytes)}}})
	if metadata.Check(big) == nil {
		t.Error("an onCuePoint larger than PutMetadata allows passes the check")
	}
	if got := inbandText("onTextData", nil); got != "" {
		t.Errorf("empty onTextData = %q", got)
	}
}
