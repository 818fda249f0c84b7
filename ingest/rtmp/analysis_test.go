package rtmp

import (
	"io"
	"testing"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// scriptConn plays a fixed list of messages, as a publisher would send them, then io.EOF.
type scriptConn struct {
	msgs []message.Message
	read int
}

func (c *scriptConn) BytesReceived() uint64       { return 0 }
func (c *scriptConn) BytesSent() uint64           { return 0 }
func (c *scriptConn) Write(message.Message) error { return nil }
func (c *scriptConn) Read() (message.Message, error) {
	if c.read == len(c.msgs) {
		return nil, io.EOF
	}
	c.read++
	return c.msgs[c.read-1], nil
}

var (
	sps = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60}
	pps = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

func onMetaData(fields ...string) message.Message {
	obj := amf0.Object{{Key: "width", Value: float64(1280)}}
	for _, f := range fields {
		obj = append(obj, amf0.ObjectEntry{Key: f, Value: float64(7)})
	}
	return &message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 1, Payload: amf0.Data{"@setDataFrame", "onMetaData", obj}}
}

func avcConfig() message.Message {
	return &message.Video{ChunkStreamID: 6, MessageStreamID: 1, Codec: message.CodecH264, IsKeyFrame: true, Type: message.VideoTypeConfig,
		AVCConfig: &mp4.AVCDecoderConfiguration{
			AnyTypeBox: mp4.AnyTypeBox{Type: mp4.BoxTypeAvcC()}, ConfigurationVersion: 1, Profile: 0x64, Level: 0x1f,
			Reserved: 0x3f, LengthSizeMinusOne: 3, Reserved2: 0x7,
			NumOfSequenceParameterSets: 1, SequenceParameterSets: []mp4.AVCParameterSet{{Length: uint16(len(sps)), NALUnit: sps}},
			NumOfPictureParameterSets: 1, PictureParameterSets: []mp4.AVCParameterSet{{Length: uint16(len(pps)), NALUnit: pps}},
		}}
}

func aacConfig() message.Message {
	return &message.Audio{ChunkStreamID: 4, MessageStreamID: 1, Codec: message.CodecMPEG4Audio, Rate: message.AudioRate44100,
		Depth: message.AudioDepth16, IsStereo: true, AACType: message.AudioAACTypeConfig,
		AACConfig: &mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelCount: 2}}
}

// frames is 3 s of 30 fps H.264 (one key frame a second, 4-byte AVCC units) and, with audio,
// AAC frames interleaved as ffmpeg sends them.
func frames(audio bool) []message.Message {
	var out []message.Message
	for i := range 90 {
		dts := time.Duration(i) * time.Second / 30
		out = append(out, &message.Video{ChunkStreamID: 6, MessageStreamID: 1, Codec: message.CodecH264, DTS: dts,
			IsKeyFrame: i%30 == 0, Type: message.VideoTypeAU, AU: []byte{0, 0, 0, 2, 0x65, byte(i)}})
		if audio && i%2 == 0 {
			out = append(out, &message.Audio{ChunkStreamID: 4, MessageStreamID: 1, Codec: message.CodecMPEG4Audio, DTS: dts,
				Rate: message.AudioRate44100, Depth: message.AudioDepth16, IsStereo: true, AACType: message.AudioAACTypeAU, AU: []byte{0x21, byte(i)}})
		}
	}
	return out
}

// initialize runs gortmplib's Reader.Initialize over an analysisConn as the publisher does and
// returns the reader, how many messages it consumed from the publisher, and the analysisConn.
func initialize(t *testing.T, msgs []message.Message) (*gortmplib.Reader, int, *analysisConn) {
	t.Helper()
	src := &scriptConn{msgs: msgs}
	a := newAnalysisConn(src)
	r := &gortmplib.Reader{Conn: a}
	if err := r.Initialize(); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	if a.done {
		r.Conn = &skipConn{Conn: r.Conn, skip: a.synthetic}
	}
	return r, src.read, a
}

// TestAnalysisShortcut: with onMetaData announcing video and audio, the reader returns the
// tracks as soon as both are configured and a frame arrived, instead of after 2 s of media;
// the replay then delivers every frame once and never the synthetic one.
func TestAnalysisShortcut(t *testing.T) {
	msgs := append([]message.Message{onMetaData("videocodecid", "audiocodecid"), avcConfig(), aacConfig()}, frames(true)...)
	r, consumed, a := initialize(t, msgs)
	if !a.done {
		t.Fatal("no shortcut although every announced track was configured")
	}
	// metadata, two configs and the first video frame.
	if consumed != 4 {
		t.Errorf("analysis consumed %d messages, want 4", consumed)
	}
	var video, audio bool
	for _, tr := range r.Tracks() {
		switch c := tr.Codec.(type) {
		case *rtmpcodecs.H264:
			video = string(c.SPS) == string(sps) && string(c.PPS) == string(pps)
		case *rtmpcodecs.MPEG4Audio:
			audio = c.Config != nil && c.Config.SampleRate == 48000
		}
	}
	if !video || !audio || len(r.Tracks()) != 2 {
		t.Fatalf("tracks = %+v", r.Tracks())
	}

	var vdts []time.Duration
	var naudio int
	r.OnDataH264(r.Tracks()[0], func(_, dts time.Duration, au [][]byte) {
		if len(au) == 1 { // the config's SPS+PPS come as an access unit of two
			vdts = append(vdts, dts)
		}
	})
	r.OnDataMPEG4Audio(r.Tracks()[1], func(time.Duration, []byte) { naudio++ })
	for {
		if err := r.Read(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if len(vdts) != 90 || naudio != 45 {
		t.Fatalf("replayed %d video and %d audio frames, want 90 and 45", len(vdts), naudio)
	}
	for i, d := range vdts {
		if d != time.Duration(i)*time.Second/30 {
			t.Fatalf("video frame %d has DTS %v", i, d)
		}
	}
}

// TestAnalysisWaitsForAnnouncedTracks: before every announced track has its configuration
// there is no shortcut, and the library's full analysis applies where the shortcut cannot
// know what to wait for (no metadata, multitrack).
func TestAnalysisWaitsForAnnouncedTracks(t *testing.T) {
	full := func(name string, msgs []message.Message) {
		t.Helper()
		_, consumed, a := initialize(t, msgs)
		if a.done {
			t.Errorf("%s: shortcut taken", name)
		}
		// 2 s of 30 fps video is 61 frames; the messages before them come on top.
		if consumed < 61 {
			t.Errorf("%s: analysis consumed only %d messages", name, consumed)
		}
	}
	// Audio announced but its configuration comes late: wait for it, then stop at once.
	late := append([]message.Message{onMetaData("videocodecid", "audiocodecid"), avcConfig()}, frames(false)[:10]...)
	late = append(late, aacConfig())
	late = append(late, frames(false)[10:]...)
	_, consumed, a := initialize(t, late)
	if !a.done || consumed != len(late)-80 {
		t.Errorf("late audio config: shortcut %v after %d messages, want after %d", a.done, consumed, len(late)-80)
	}

	full("audio announced, never configured", append([]message.Message{onMetaData("videocodecid", "audiocodecid"), avcConfig()}, frames(false)...))
	full("no onMetaData", append([]message.Message{avcConfig(), aacConfig()}, frames(true)...))
	full("onMetaData after media", append([]message.Message{avcConfig(), onMetaData("videocodecid"), aacConfig()}, frames(true)...))

	// Enhanced RTMP multitrack: two video tracks announced by one onMetaData.
	multi := []message.Message{onMetaData("videocodecid"),
		&message.VideoExMultitrack{MultitrackType: message.VideoExMultitrackTypeOneTrack, TrackID: 1,
			Wrapped: &message.VideoExSequenceStart{FourCC: message.FourCCAVC, AVCConfig: avcConfig().(*message.Video).AVCConfig}},
		avcConfig()}
	multi = append(multi, frames(false)...)
	full("multitrack", multi)
	// Multitrack announced by onMetaData, a second audio track that shows itself only with its
	// first frame: the shortcut would end the analysis before it and the track's first frame
	// would end the publish.
	full("multitrack in onMetaData", append([]message.Message{onMetaData("videocodecid", "audiocodecid", "audioTrackIdInfoMap"), avcConfig(), aacConfig()}, frames(true)...))
}
