package packager

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	mp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// videoParams are the parameter sets an init segment describes. A key frame that arrives with
// different ones starts a segment with a new init.
type videoParams struct {
	vps, sps, pps []byte // vps only for H.265
}

func (a *videoParams) equal(b *videoParams) bool {
	return bytes.Equal(a.vps, b.vps) && bytes.Equal(a.sps, b.sps) && bytes.Equal(a.pps, b.pps)
}

func (a *videoParams) complete(h265 bool) bool {
	return a.sps != nil && a.pps != nil && (!h265 || a.vps != nil)
}

// videoInfo is what the SPS says about the picture.
type videoInfo struct {
	codecs        string // RFC 6381
	width, height int
	fps           float64 // VUI timing, 0 when absent
}

func describeH264(sps []byte) (videoInfo, error) {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return videoInfo{}, fmt.Errorf("parse H.264 SPS: %w", err)
	}
	// avc1.PPCCLL: profile_idc, the constraint-flag byte and level_idc, straight from the SPS.
	return videoInfo{
		codecs: "avc1." + hex.EncodeToString(sps[1:4]),
		width:  s.Width(), height: s.Height(), fps: s.FPS(),
	}, nil
}

func describeH265(sps []byte) (videoInfo, error) {
	var s h265.SPS
	if err := s.Unmarshal(sps); err != nil {
		return videoInfo{}, fmt.Errorf("parse H.265 SPS: %w", err)
	}
	return videoInfo{codecs: hevcCodecs(&s.ProfileTierLevel), width: s.Width(), height: s.Height(), fps: s.FPS()}, nil
}

// hevcCodecs renders the hvc1 codecs parameter of ISO/IEC 14496-15 annex E.3:
// hvc1.[space]profile.compat.tierlevel.constraints, e.g. hvc1.1.6.L93.B0.
func hevcCodecs(p *h265.SPS_ProfileTierLevel) string {
	var sb strings.Builder
	sb.WriteString("hvc1.")
	if p.GeneralProfileSpace > 0 {
		sb.WriteByte('A' + p.GeneralProfileSpace - 1)
	}
	sb.WriteString(strconv.Itoa(int(p.GeneralProfileIdc)))
	// The 32 compatibility flags in reverse bit order: flag j becomes bit j.
	var compat uint32
	for j, f := range p.GeneralProfileCompatibilityFlag {
		if f {
			compat |= 1 << j
		}
	}
	sb.WriteString("." + strconv.FormatUint(uint64(compat), 16) + ".")
	if p.GeneralTierFlag != 0 {
		sb.WriteByte('H')
	} else {
		sb.WriteByte('L')
	}
	sb.WriteString(strconv.Itoa(int(p.GeneralLevelIdc)))
	// Constraint indicator bytes, trailing zero bytes omitted. mediacommon parses the first 16
	// of the 48 bits; the rest are reserved or only used by profiles we do not ingest.
	flags := [][8]bool{
		{p.GeneralProgressiveSourceFlag, p.GeneralInterlacedSourceFlag, p.GeneralNonPackedConstraintFlag,
			p.GeneralFrameOnlyConstraintFlag, p.GeneralMax12bitConstraintFlag, p.GeneralMax10bitConstraintFlag,
			p.GeneralMax8bitConstraintFlag, p.GeneralMax422ChromeConstraintFlag},
		{p.GeneralMax420ChromaConstraintFlag, p.GeneralMaxMonochromeConstraintFlag, p.GeneralIntraConstraintFlag,
			p.GeneralOnePictureOnlyConstraintFlag, p.GeneralLowerBitRateConstraintFlag, p.GeneralMax14BitConstraintFlag},
	}
	var bs []byte
	for _, f := range flags {
		var b byte
		for i, set := range f {
			if set {
				b |= 0x80 >> i
			}
		}
		bs = append(bs, b)
	}
	for len(bs) > 0 && bs[len(bs)-1] == 0 {
		bs = bs[:len(bs)-1]
	}
	for _, b := range bs {
		sb.WriteString("." + strings.ToUpper(strconv.FormatUint(uint64(b), 16)))
	}
	return sb.String()
}

func audioCodecs(c codecs.Codec) string {
	switch c := c.(type) {
	case *codecs.MPEG4Audio:
		return "mp4a.40." + strconv.Itoa(int(c.Config.Type))
	case *codecs.Opus:
		return "opus"
	}
	return ""
}

// marshalInit encodes an init segment with mediacommon and adds the `aid3` compatible brand to
// its ftyp, which signals ID3-in-emsg to players (AOM id3-emsg §3). mediacommon writes a fixed
// ftyp, so the box is decoded and re-encoded with go-mp4; the moov after it is untouched (an
// init holds no absolute offsets).
func marshalInit(tracks []*fmp4.InitTrack) ([]byte, error) {
	var buf seekablebuffer.Buffer
	if err := (&fmp4.Init{Tracks: tracks}).Marshal(&buf); err != nil {
		return nil, fmt.Errorf("marshal init: %w", err)
	}
	b := buf.Bytes()
	r := bytes.NewReader(b)
	bi, err := mp4.ReadBoxInfo(r)
	if err != nil {
		return nil, fmt.Errorf("read init: %w", err)
	}
	if bi.Type != mp4.BoxTypeFtyp() || bi.Size > uint64(len(b)) {
		return nil, fmt.Errorf("init starts with %q, not ftyp", bi.Type)
	}
	var ftyp mp4.Ftyp
	if _, err := mp4.Unmarshal(r, bi.Size-bi.HeaderSize, &ftyp, mp4.Context{}); err != nil {
		return nil, fmt.Errorf("read ftyp: %w", err)
	}
	ftyp.AddCompatibleBrand([4]byte{'a', 'i', 'd', '3'})
	var payload bytes.Buffer
	n, err := mp4.Marshal(&payload, &ftyp, mp4.Context{})
	if err != nil {
		return nil, fmt.Errorf("write ftyp: %w", err)
	}
	hdr := mp4.EncodeBoxInfo(&mp4.BoxInfo{Type: mp4.BoxTypeFtyp(), Size: mp4.SmallHeaderSize + n})
	out := make([]byte, 0, len(hdr)+payload.Len()+len(b)-int(bi.Size))
	out = append(out, hdr...)
	out = append(out, payload.Bytes()...)
	return append(out, b[bi.Size:]...), nil
}
