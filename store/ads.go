package store

import "time"

// AdConfiguration is IVS's ad configuration: the MediaTailor playback configurations a
// channel's ad breaks are meant for. Glasscast keeps it for the API; the markers InsertAdBreak
// writes serve any ad-insertion server.
type AdConfiguration struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// PlaybackConfigurationArns lists mediaTailorPlaybackConfigurations' ARNs, in order.
	PlaybackConfigurationArns []string          `json:"playbackConfigurationArns"`
	Tags                      map[string]string `json:"tags,omitempty"`
	CreatedAt                 time.Time         `json:"createdAt"`
}
