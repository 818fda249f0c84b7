// Package media defines what flows from ingest to origin: a broadcast's renditions, their fMP4
// init segments and the parts that make up each segment, plus Sink, the one interface that
// carries them whether the origin runs in the same process or behind HTTP.
package media

import (
	"context"
	"errors"
	"time"
)

// Stream describes a broadcast as the origin needs to publish it. It is fixed for the whole
// broadcast: playlists must not change TARGETDURATION or PART-TARGET while live.
type Stream struct {
	ChannelID string `json:"channelId"`
	StreamID  string `json:"streamId"`
	// LowLatency lists parts (EXT-X-PART) in media playlists; NORMAL channels list segments only.
	LowLatency bool `json:"lowLatency"`
	// TargetDuration is the segment target; segments never exceed it once rounded.
	TargetDuration time.Duration `json:"targetDuration"`
	// PartTarget is the advertised PART-TARGET: no part is longer, and parts other than the
	// last of a segment are at least 85 % of it. Zero when the packager cuts no parts.
	PartTarget time.Duration `json:"partTarget"`
}

// Rendition describes one variant: what EXT-X-STREAM-INF says about it.
type Rendition struct {
	// Name is URI-safe and unique in the stream ("source", "720p30", ...).
	Name             string  `json:"name"`
	Codecs           string  `json:"codecs"` // RFC 6381, e.g. "avc1.64001f,mp4a.40.2"
	Width            int     `json:"width,omitempty"`
	Height           int     `json:"height,omitempty"`
	FrameRate        float64 `json:"frameRate,omitempty"`
	Bandwidth        int     `json:"bandwidth"`        // peak bits per second
	AverageBandwidth int     `json:"averageBandwidth"` // mean bits per second
	// Generation increases each time the rendition's init segment changes (new codec parameters
	// after a reconnect); segments made after the change reference the new init.
	Generation int `json:"generation"`
}

// Cue is one timed-metadata event, already written into a part as emsg boxes. The origin
// mirrors it into the playlist (EXT-X-DATERANGE) and the archive into recordings.
type Cue struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"` // wall-clock instant on the program-date-time timeline
	Text string    `json:"text"`
}

// Part is a completed partial segment: a self-contained run of fMP4 fragments (emsg*, moof,
// mdat). A segment is the concatenation of its parts, in Index order.
type Part struct {
	MSN      uint64        `json:"msn"`   // media sequence number of the segment it belongs to
	Index    int           `json:"index"` // position in that segment, from 0
	Duration time.Duration `json:"duration"`
	// Independent is true when the part starts with a key frame.
	Independent bool `json:"independent"`
	// Last is true on the final part of its segment; the segment is complete with it.
	Last bool `json:"last"`
	// Discontinuity is set on part 0 of a segment whose timestamps do not follow the previous
	// segment's (a publisher reconnected, or its clock jumped).
	Discontinuity bool `json:"discontinuity"`
	// ProgramDateTime is the wall-clock time of the part's first sample.
	ProgramDateTime time.Time `json:"programDateTime"`
	Cues            []Cue     `json:"cues,omitempty"`
	Data            []byte    `json:"-"`
}

// Sink accepts broadcasts. The origin implements it in process; the push client implements it
// over HTTP for an origin in another process.
type Sink interface {
	// Open starts a broadcast on a channel, or resumes it when StreamID matches the broadcast
	// the origin already holds (a publisher reconnecting inside the grace window).
	Open(ctx context.Context, s Stream) (Broadcast, error)
}

// Output receives renditions' init segments and parts, in order: an init before the first part
// that uses it. It is the one interface from the packager and the transcoder to the hop that
// delivers them; each call runs under the caller's context. It may keep the slices it is given.
type Output interface {
	// Init publishes a rendition's description and init segment, or replaces them when
	// Generation increased.
	Init(ctx context.Context, r Rendition, init []byte) error
	// Part appends a completed part to the named rendition.
	Part(ctx context.Context, rendition string, p Part) error
}

// Broadcast receives one stream's objects in order.
type Broadcast interface {
	Output
	// Close ends the broadcast: playlists get EXT-X-ENDLIST and stay readable for a while.
	Close(ctx context.Context) error
}

// ErrNotFound is returned for channels, renditions or objects an origin does not hold.
var ErrNotFound = errors.New("not found")

// Object is one Init or Part call, for a Batcher.
type Object struct {
	// Init, when set, makes the object an Init of that rendition with InitData.
	Init     *Rendition
	InitData []byte
	// Rendition and Part make it a Part (with its Data) otherwise.
	Rendition string
	Part      Part
}

// Batcher is implemented by a Broadcast that takes several objects in one call for less than
// one call each: an origin across a WAN link, where each call costs a round trip. A sink that
// answers one call per round trip can take parts no faster than one per round trip; a Tee
// sends what queued up for it during the previous call as one batch, in order.
type Batcher interface {
	// Batch makes the calls objs describe, in order, stopping at the first that fails.
	Batch(ctx context.Context, objs []Object) error
}

// Replay makes the calls objs describe on b one by one, in order, stopping at the first that
// fails: a batch for a broadcast that takes no batches.
func Replay(ctx context.Context, b Broadcast, objs []Object) error {
	for _, o := range objs {
		var err error
		if o.Init != nil {
			err = b.Init(ctx, *o.Init, o.InitData)
		} else {
			err = b.Part(ctx, o.Rendition, o.Part)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
