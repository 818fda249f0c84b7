package layout

import (
	"encoding/json"
	"time"
)

// Recording status values of the event files.
const (
	StatusStarted          = "RECORDING_STARTED"
	StatusEnded            = "RECORDING_ENDED"
	StatusEndedWithFailure = "RECORDING_ENDED_WITH_FAILURE"
)

// EventFile is the JSON of events/recording-*.json.
type EventFile struct {
	Version            string     `json:"version"`
	ChannelARN         string     `json:"channel_arn"`
	RecordingStartedAt string     `json:"recording_started_at"`
	RecordingEndedAt   string     `json:"recording_ended_at,omitempty"`
	RecordingStatus    string     `json:"recording_status"`
	StatusMessage      string     `json:"recording_status_message,omitempty"`
	Media              EventMedia `json:"media"`
}

// EventMedia is the event file's media member.
type EventMedia struct {
	HLS             EventHLS        `json:"hls"`
	Thumbnails      *EventThumbnail `json:"thumbnails,omitempty"`
	LatestThumbnail *EventThumbnail `json:"latest_thumbnail,omitempty"`
}

// EventHLS describes the recorded HLS.
type EventHLS struct {
	// DurationMS is absent from recording-started.json.
	DurationMS        *int64           `json:"duration_ms,omitempty"`
	Path              string           `json:"path"`
	Playlist          string           `json:"playlist"`
	ByteRangePlaylist string           `json:"byte_range_playlist"`
	Renditions        []EventRendition `json:"renditions"`
}

// EventRendition is one entry of media.hls.renditions.
type EventRendition struct {
	Path              string `json:"path"`
	Playlist          string `json:"playlist"`
	ByteRangePlaylist string `json:"byte_range_playlist"`
	Width             int    `json:"resolution_width,omitempty"`
	Height            int    `json:"resolution_height,omitempty"`
}

// EventThumbnail is media.thumbnails or media.latest_thumbnail.
type EventThumbnail struct {
	Path   string `json:"path"`
	Width  int    `json:"resolution_width,omitempty"`
	Height int    `json:"resolution_height,omitempty"`
}

// eventTime is RFC 3339 UTC to the second, as IVS writes it.
func eventTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Event renders an event file. status is StatusStarted, StatusEnded or StatusEndedWithFailure;
// ended and message are ignored for StatusStarted.
func Event(r *Recording, status string, ended time.Time, message string) []byte {
	e := EventFile{
		Version:            "v1",
		ChannelARN:         r.ChannelARN,
		RecordingStartedAt: eventTime(r.StartedAt),
		RecordingStatus:    status,
		Media: EventMedia{HLS: EventHLS{Path: HLSPath, Playlist: MasterPlaylist, ByteRangePlaylist: ByteRangeMultivariant,
			Renditions: []EventRendition{}}},
	}
	if status != StatusStarted {
		e.RecordingEndedAt = eventTime(ended)
		e.StatusMessage = message
		ms := r.Duration().Milliseconds()
		e.Media.HLS.DurationMS = &ms
	}
	for _, rd := range r.Renditions {
		e.Media.HLS.Renditions = append(e.Media.HLS.Renditions, EventRendition{Path: rd.Name, Playlist: MediaPlaylist,
			ByteRangePlaylist: ByteRangeVariant, Width: rd.Width, Height: rd.Height})
	}
	if t := r.Thumbnails; t != nil {
		if t.Sequential {
			e.Media.Thumbnails = &EventThumbnail{Path: ThumbnailsPath, Width: t.Width, Height: t.Height}
		}
		if t.Latest {
			e.Media.LatestThumbnail = &EventThumbnail{Path: LatestThumbnail, Width: t.Width, Height: t.Height}
		}
	}
	b, _ := json.MarshalIndent(e, "", "  ") // plain structs of strings and numbers always encode
	return append(b, '\n')
}
