// Package layout names and renders what IVS writes for one recording: the S3 key prefix, the
// event files, and the HLS playlists over the recorded MPEG-TS files. It only formats; the
// recorder decides what the recording holds (reference/ivs-recording-events.md §1-§2).
package layout

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"glasscast/archive/remux"
)

// Paths relative to a recording's prefix, as IVS names them.
const (
	HLSPath               = "media/hls"
	MasterPlaylist        = "master.m3u8"
	ByteRangeMultivariant = "byte-range-multivariant.m3u8"
	MediaPlaylist         = "playlist.m3u8"
	ByteRangeVariant      = "byte-range-variant.m3u8"
	ThumbnailsPath        = "media/thumbnails"
	LatestThumbnail       = "media/latest_thumbnail/thumb.jpg"
	StartedEvent          = "events/recording-started.json"
	EndedEvent            = "events/recording-ended.json"
	FailedEvent           = "events/recording-failed.json"
)

// Prefix is the key prefix of a recording, without a trailing slash: the UTC start time in
// unpadded fields, as in every IVS recording.
func Prefix(account, channelID string, start time.Time, recordingID string) string {
	t := start.UTC()
	return fmt.Sprintf("ivs/v1/%s/%s/%d/%d/%d/%d/%d/%s", account, channelID, t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), recordingID)
}

// SegmentName is the file name of TS file n of a rendition.
func SegmentName(n int) string { return strconv.Itoa(n) + ".ts" }

// SegmentKey is the key of TS file n relative to the prefix.
func SegmentKey(rendition string, n int) string {
	return HLSPath + "/" + rendition + "/" + SegmentName(n)
}

// ThumbnailKey is the key of sequential thumbnail n relative to the prefix.
func ThumbnailKey(n int) string { return ThumbnailsPath + "/thumb" + strconv.Itoa(n) + ".jpg" }

// RenditionName is IVS's "<height>p<fps>" (720p30), or "audio_only" without video.
func RenditionName(height int, fps float64) string {
	if height <= 0 {
		return "audio_only"
	}
	if fps <= 0 || math.IsInf(fps, 0) || math.IsNaN(fps) {
		fps = 30
	}
	return strconv.Itoa(height) + "p" + strconv.Itoa(int(math.Round(fps)))
}

// Recording is what a recording holds so far.
type Recording struct {
	ChannelARN string
	ChannelID  string
	Account    string
	StartedAt  time.Time
	Renditions []*Rendition // highest first
	Thumbnails *Thumbnails  // nil unless thumbnails are recorded
}

// Rendition is one recorded variant.
type Rendition struct {
	Name          string
	Width, Height int
	FrameRate     float64
	Codecs        string
	Bandwidth     int // peak bits per second, from the live multivariant playlist
	Files         []File
}

// File is one TS file of a rendition.
type File struct {
	N int
	// Discontinuity marks a file whose media does not continue the previous listed file's.
	Discontinuity bool
	// Dropped files were lost before they reached the bucket; playlists leave them out.
	Dropped bool
	Chunks  []remux.Chunk
	// AdMarkers are ad-break tags the playlists write in front of the file: a file starts
	// where a live segment with ad markers started.
	AdMarkers []string `json:",omitempty"`
}

// Duration is the file's media duration.
func (f *File) Duration() time.Duration {
	var d time.Duration
	for _, c := range f.Chunks {
		d += c.Duration
	}
	return d
}

// Thumbnails describes the recording's thumbnails for the event files.
type Thumbnails struct {
	Sequential    bool
	Latest        bool
	Width, Height int
}

// Duration is the recording's duration: the longest rendition's listed media.
func (r *Recording) Duration() time.Duration {
	var best time.Duration
	for _, rd := range r.Renditions {
		var d time.Duration
		for i := range rd.Files {
			if !rd.Files[i].Dropped {
				d += rd.Files[i].Duration()
			}
		}
		best = max(best, d)
	}
	return best
}
