package rtmp

import (
	"math"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
)

// analysisConn shortens gortmplib's track analysis. Reader.Initialize reads a fixed 2 s of
// media before it returns the tracks, so nothing could be packaged (and the channel could not
// go LIVE) until 2 s after the first frame. The publisher's onMetaData names the tracks it
// will send (videocodecid, audiocodecid; ffmpeg and OBS send it first), so once each of those
// has its configuration and a frame has arrived, analysisConn returns one synthetic frame
// whose DTS ends the library's analysis at once. Without metadata, with Enhanced RTMP
// multitrack, or on anything unexpected it stays out of the way and the library's 2 s apply.
//
// It sits below the rewindableConn that Initialize installs, so the recording the library
// replays afterwards holds the synthetic frame too: wrap the Reader's Conn with skip after
// Initialize.
type analysisConn struct {
	gortmplib.Conn

	metadata      bool // onMetaData arrived before any media
	off           bool // fall back to the library's analysis period
	done          bool // the synthetic frame was returned
	wantVideo     bool
	wantAudio     bool
	videoConfig   bool
	audioConfig   bool
	videoFrame    bool
	audioFrame    bool
	audioSeqStart bool

	synthetic *message.VideoExCodedFrames
}

func newAnalysisConn(c gortmplib.Conn) *analysisConn {
	// MaxInt64/2 exceeds any first DTS (RTMP's 32-bit milliseconds) by far more than 2 s and
	// cannot overflow the library's subtraction.
	return &analysisConn{Conn: c, synthetic: &message.VideoExCodedFrames{DTS: math.MaxInt64 / 2, FourCC: message.FourCCAVC}}
}

func (a *analysisConn) Read() (message.Message, error) {
	if !a.off && !a.done && a.ready() {
		a.done = true
		return a.synthetic, nil
	}
	msg, err := a.Conn.Read()
	if err == nil && !a.off && !a.done {
		a.see(msg)
	}
	return msg, err
}

// ready reports whether every track onMetaData announced is configured and a frame arrived.
func (a *analysisConn) ready() bool {
	if !a.metadata || (!a.wantVideo && !a.wantAudio) {
		return false
	}
	if a.wantVideo && !(a.videoConfig && a.videoFrame) {
		return false
	}
	if a.wantAudio && !a.audioConfig {
		return false
	}
	return a.wantVideo || a.audioFrame
}

// see notes what msg tells about the tracks, mirroring what the library's readTracks needs to
// set each one up.
func (a *analysisConn) see(msg message.Message) {
	switch m := msg.(type) {
	case *message.DataAMF0:
		args := []any(m.Payload)
		if len(args) > 0 && args[0] == "@setDataFrame" {
			args = args[1:]
		}
		if len(args) > 1 && args[0] == "onMetaData" && !a.metadata {
			meta := amfObject(args[1])
			_, a.wantVideo = meta["videocodecid"]
			_, a.wantAudio = meta["audiocodecid"]
			a.metadata = true
			// Enhanced RTMP announces further tracks here; one of them may show itself only
			// with its first frame (MP3 has no sequence start), after the shortcut would stop.
			_, videoTracks := meta["videoTrackIdInfoMap"]
			_, audioTracks := meta["audioTrackIdInfoMap"]
			a.off = a.off || videoTracks || audioTracks
		}
	case *message.Video:
		a.media()
		switch m.Type {
		case message.VideoTypeConfig:
			if (m.Codec == message.CodecH264 && m.AVCConfig != nil) || (m.Codec == message.CodecH265 && m.HEVCConfig != nil) {
				a.videoConfig = true
			}
		case message.VideoTypeAU:
			a.videoFrame = a.videoFrame || a.videoConfig
		}
	case *message.VideoExSequenceStart:
		a.media()
		a.videoConfig = true
	case *message.VideoExCodedFrames, *message.VideoExFramesX:
		a.media()
		a.videoFrame = a.videoFrame || a.videoConfig
	case *message.Audio:
		a.media()
		if m.Codec != message.CodecMPEG4Audio {
			a.audioConfig = true // MP3, G.711 and LPCM are described by their first frame
		} else if m.AACType == message.AudioAACTypeConfig && m.AACConfig != nil {
			a.audioConfig = true
		}
		a.audioFrame = a.audioFrame || (a.audioConfig && (m.Codec != message.CodecMPEG4Audio || m.AACType == message.AudioAACTypeAU))
	case *message.AudioExSequenceStart:
		a.media()
		a.audioSeqStart = true
	case *message.AudioExCodedFrames:
		a.media()
		if a.audioSeqStart || m.FourCC == message.FourCCMP3 {
			a.audioConfig, a.audioFrame = true, true
		}
	case *message.VideoExMultitrack, *message.AudioExMultitrack:
		a.off = true // several tracks of one kind: let the library see them all
	case *message.VideoExMetadata, *message.VideoExSequenceEnd, *message.AudioExSequenceEnd, *message.AudioExMultichannelConfig:
		a.media()
	}
}

// media turns the shortcut off if media comes before onMetaData: without it there is no
// telling which tracks to wait for.
func (a *analysisConn) media() {
	if !a.metadata {
		a.off = true
	}
}

// skipConn drops the synthetic frame when the Reader replays its recording.
type skipConn struct {
	gortmplib.Conn
	skip message.Message
}

func (s *skipConn) Read() (message.Message, error) {
	for {
		msg, err := s.Conn.Read()
		if err != nil || msg != s.skip {
			return msg, err
		}
	}
}
