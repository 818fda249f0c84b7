package llhlscheck

import (
	"bytes"
	"errors"
	"time"

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

// firstSampleDuration returns the duration of a part's first sample of the leading track: the
// first video track of the init segment, or its first track when it has no video.
func firstSampleDuration(init, part []byte) (time.Duration, error) {
	var in fmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil {
		return 0, err
	}
	if len(in.Tracks) == 0 {
		return 0, errors.New("init segment without tracks")
	}
	lead := in.Tracks[0]
	for _, tr := range in.Tracks {
		if tr.Codec != nil && tr.Codec.IsVideo() {
			lead = tr
			break
		}
	}
	var ps fmp4.Parts
	if err := ps.Unmarshal(part); err != nil {
		return 0, err
	}
	for _, p := range ps {
		for _, tr := range p.Tracks {
			if tr.ID == lead.ID && len(tr.Samples) > 0 && lead.TimeScale > 0 {
				return time.Duration(int64(tr.Samples[0].Duration) * int64(time.Second) / int64(lead.TimeScale)), nil
			}
		}
	}
	return 0, errors.New("part without a sample of the leading track")
}
