package llhlscheck

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// videoTracks returns the IDs of the video tracks of an fMP4 init segment.
func videoTracks(init []byte) (map[int]bool, error) {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		return nil, err
	}
	ids := map[int]bool{}
	for _, tr := range in.Tracks {
		if tr.Codec != nil && tr.Codec.IsVideo() {
			ids[tr.ID] = true
		}
	}
	return ids, nil
}

// hasSyncSample reports whether an fMP4 part holds a sync sample (an independent frame) of one
// of the video tracks.
func hasSyncSample(part []byte, video map[int]bool) (bool, error) {
	var ps fmp4.Parts
	if err := ps.Unmarshal(part); err != nil {
		return false, err
	}
	for _, p := range ps {
		for _, tr := range p.Tracks {
			if !video[tr.ID] {
				continue
			}
			for _, s := range tr.Samples {
				if !s.IsNonSyncSample {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
