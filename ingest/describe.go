package ingest

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"glasscast/store"
)

var avcProfiles = map[uint8]string{66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2", 244: "High 4:4:4"}

// describeVideo fills codec, profile, level and (when the publisher did not say) the size
// from the parameter sets.
func describeVideo(c mp4codecs.Codec, v *store.VideoConfig) {
	switch c := c.(type) {
	case *mp4codecs.H264:
		var sps h264.SPS
		if len(c.SPS) < 4 || sps.Unmarshal(c.SPS) != nil {
			v.Codec = "avc1"
			return
		}
		v.Codec = fmt.Sprintf("avc1.%02X%02X%02X", c.SPS[1], c.SPS[2], c.SPS[3])
		v.Profile = avcProfiles[sps.ProfileIdc]
		if v.Profile == "" {
			v.Profile = fmt.Sprint(sps.ProfileIdc)
		}
		v.Level = fmt.Sprintf("%d.%d", sps.LevelIdc/10, sps.LevelIdc%10)
		if v.Width == 0 || v.Height == 0 {
			v.Width, v.Height = int64(sps.Width()), int64(sps.Height())
		}
		if v.TargetFramerate == 0 {
			v.TargetFramerate = int64(sps.FPS() + 0.5)
		}
	case *mp4codecs.H265:
		var sps h265.SPS
		if sps.Unmarshal(c.SPS) != nil {
			v.Codec = "hvc1"
			return
		}
		v.Codec = fmt.Sprintf("hvc1.%d.L%d", sps.ProfileTierLevel.GeneralProfileIdc, sps.ProfileTierLevel.GeneralLevelIdc)
		v.Profile = map[uint8]string{1: "Main", 2: "Main 10"}[sps.ProfileTierLevel.GeneralProfileIdc]
		v.Level = fmt.Sprintf("%.1f", float64(sps.ProfileTierLevel.GeneralLevelIdc)/30)
		if v.Width == 0 || v.Height == 0 {
			v.Width, v.Height = int64(sps.Width()), int64(sps.Height())
		}
	}
}
