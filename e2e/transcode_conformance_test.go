package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// TestLLHLSConformanceStandard runs the whole checklist on a STANDARD channel, whose ladder of
// four renditions makes P15 (rendition reports for every other rendition, up to date) and P17
// (program-date-times consistent across renditions) bite. Only D10, for servers without delta
// updates, may not apply.
func TestLLHLSConformanceStandard(t *testing.T) {
	runConformance(t, types.ChannelTypeStandardChannelType, "D10")
}
