package packager

import (
	"encoding/hex"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Parameter sets of real x264 encodes, so that init segments describe real pictures.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	sps720 = mustHex("674d401fda014016ec0440000003004000000f03c60ca8")
	sps360 = mustHex("674d401eda0280bfe5c044000003000400000300f03c58ba80")
	pps    = mustHex("68ef0fc8")
)

// synth describes a synthetic constant-frame-rate stream with RTMP's millisecond timestamps.
// Slice payloads are filler: the packager never looks inside them.
type synth struct {
	num, den  int // frame rate num/den
	gop       int
	frames    int
	start     time.Duration // timestamp of the first frame
	keySize   int
	frameSize int
	audio     bool
	drop      map[int]bool // frame indexes the "encoder" skipped
	keys      map[int]bool // frame indexes made key frames off the GOP's count (scene cuts)
	nonKeys   map[int]bool // frame indexes the GOP's count makes key frames that are not
	sps       []byte
	// times, when set, are the frames' timestamps (a variable frame rate); num/den then only
	// say how fast audio comes.
	times []time.Duration
}

func (s synth) frameTime(i int) time.Duration {
	if s.times != nil {
		if i < len(s.times) {
			return s.times[i]
		}
		return s.times[len(s.times)-1] + time.Second/time.Duration(s.num)
	}
	ms := math.Round(float64(i) * 1000 * float64(s.den) / float64(s.num))
	return s.start + time.Duration(ms)*time.Millisecond
}

func (s synth) input() input {
	if s.keySize == 0 {
		s.keySize, s.frameSize = 2000, 500
	}
	if s.sps == nil {
		s.sps = sps720
	}
	in := input{video: &codecs.H264{}}
	if s.audio {
		in.audio = &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2}}
	}
	end := s.frameTime(s.frames)
	nextAudio := 0
	for i := 0; i < s.frames; i++ {
		ts := s.frameTime(i)
		for s.audio {
			at := s.start + time.Duration(math.Round(float64(nextAudio)*1024*1000/48000))*time.Millisecond
			if at > ts || at >= end {
				break
			}
			in.units = append(in.units, unit{pts: at, dts: at, data: make([]byte, 300)})
			nextAudio++
		}
		if s.drop[i] {
			continue
		}
		var au [][]byte
		if (i%s.gop == 0 || s.keys[i]) && !s.nonKeys[i] {
			au = [][]byte{s.sps, pps, filler(0x65, s.keySize)}
		} else {
			au = [][]byte{filler(0x41, s.frameSize)}
		}
		in.units = append(in.units, unit{video: true, pts: ts, dts: ts, au: au})
	}
	return in
}

func filler(header byte, n int) []byte {
	b := make([]byte, n)
	b[0] = header
	for i := 1; i < n; i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}
