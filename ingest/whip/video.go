package whip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp8"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
)

const (
	// maxVideoQueue bounds the VP8/VP9 frames waiting for ffmpeg (3 s at 30 fps). A frame
	// that does not fit is dropped, and so is every frame after it until the next key frame,
	// since they refer to it.
	maxVideoQueue = 90
	// h264Clock is the timestamp clock of the IVF ffmpeg reads and the MPEG-TS it writes.
	h264Clock = 90000
)

// vpxFrame is one VP8 or VP9 frame, timed on the session's timeline.
type vpxFrame struct {
	data []byte
	pts  time.Duration
	key  bool
}

// vpxIsKey reports whether a VP8 or VP9 frame can start decoding.
func vpxIsKey(mime string, frame []byte) bool {
	if strings.EqualFold(mime, webrtc.MimeTypeVP9) {
		return vp9.IsRandomAccess(frame)
	}
	return vp8.IsRandomAccess(frame)
}

// vpxSize is the picture size a key frame announces (0, 0 if it says none).
func vpxSize(mime string, key []byte) (int, int) {
	if strings.EqualFold(mime, webrtc.MimeTypeVP9) {
		var h vp9.Header
		if h.Unmarshal(key) != nil {
			return 0, 0
		}
		return h.Width(), h.Height()
	}
	// A VP8 key frame: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and
	// height, each with 2 bits of scaling (RFC 6386, 9.1).
	if len(key) < 10 || key[3] != 0x9d || key[4] != 0x01 || key[5] != 0x2a {
		return 0, 0
	}
	return int(key[6]) | int(key[7]&0x3f)<<8, int(key[8]) | int(key[9]&0x3f)<<8
}

// h264Encoder transcodes VP8 or VP9 to H.264 through a supervised ffmpeg: IVF in on stdin,
// MPEG-TS out on stdout, timestamps passed through. Browsers may send VP8 or VP9 only, and
// Glasscast channels carry H.264, which every HLS player plays. A run starts at a key frame;
// an ffmpeg that dies is started again (with a growing pause) at the next one, which the
// publisher is asked for. Its output has an IDR every keyEvery and the largest picture size
// the publisher has sent: browsers start small and raise their resolution as bandwidth
// allows (each step up starts a new run at its key frame, and a new init section), and lower
// it under load for a while (scaled back up, so that players see no change).
type h264Encoder struct {
	ffmpeg, preset, mime string
	keyEvery             time.Duration
	log                  *slog.Logger
	out                  func(pts time.Duration, au [][]byte)
	askKey               func()
	in                   chan vpxFrame
	ctx                  context.Context
	cancel               context.CancelFunc
	done                 chan struct{}
	// Used by write's caller only.
	skipping bool
	drops    int
}

func newH264Encoder(ctx context.Context, cfg Config, mime string, log *slog.Logger, askKey func(), out func(time.Duration, [][]byte)) *h264Encoder {
	e := &h264Encoder{ffmpeg: cfg.FFmpeg, preset: cfg.X264Preset, mime: mime, keyEvery: cfg.KeyFrameInterval, log: log,
		out: out, askKey: askKey, in: make(chan vpxFrame, maxVideoQueue), done: make(chan struct{}), skipping: true}
	e.ctx, e.cancel = context.WithCancel(ctx)
	go e.supervise()
	return e
}

// write queues a frame; it never blocks the RTP reader. A frame that does not fit is
// dropped with the frames that depend on it, until the key frame it asks for.
func (e *h264Encoder) write(f vpxFrame) {
	if e.skipping && !f.key {
		return
	}
	select {
	case e.in <- f:
		e.skipping = false
	default:
		e.skipping = true
		e.drops++
		if e.drops%30 == 1 {
			e.log.Warn("whip: video frames dropped: the video transcoder falls behind", "dropped", e.drops)
		}
		e.askKey()
	}
}

// close stops ffmpeg and waits for it.
func (e *h264Encoder) close() {
	e.cancel()
	<-e.done
}

func (e *h264Encoder) supervise() {
	defer close(e.done)
	wait := 250 * time.Millisecond
	for {
		var first vpxFrame
		for !first.key {
			select {
			case <-e.ctx.Done():
				return
			case first = <-e.in:
			}
		}
		started := time.Now()
		next, err := e.run(first)
		for next != nil && err == nil {
			// The picture grew (a browser ramping its resolution up): a run of the new size
			// takes over at that key frame, once the last one has written all it had.
			next, err = e.run(*next)
		}
		if e.ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			wait = 250 * time.Millisecond
		}
		e.log.Warn("whip: the video transcoder (ffmpeg) stopped; restarting", "err", err, "after", wait)
		// Video that arrives meanwhile is dropped; the next run starts at a key frame.
		t := time.NewTimer(wait)
	drain:
		for {
			select {
			case <-e.ctx.Done():
				t.Stop()
				return
			case <-e.in:
			case <-t.C:
				break drain
			}
		}
		e.askKey()
		wait = min(2*wait, maxRestartWait)
	}
}

// args decode the IVF as it arrives and encode H.264 with the same timestamps (-copyts,
// passthrough frame timing, a 90 kHz encoder clock); zerolatency drops B-frames and
// look-ahead, so each frame leaves ffmpeg as soon as it is encoded.
func (e *h264Encoder) args(width, height int) []string {
	kbps := "6000k" // IVS's ceiling for a 1080p input; x264's CRF spends less on most pictures
	return []string{"-hide_banner", "-loglevel", "error", "-nostats", "-nostdin",
		"-probesize", "32", "-analyzeduration", "0", "-copyts", // no +nobuffer: it loses the first frames
		"-f", "ivf", "-i", "pipe:0",
		"-vf", "scale=" + strconv.Itoa(width&^1) + ":" + strconv.Itoa(height&^1), "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", e.preset, "-tune", "zerolatency", "-profile:v", "high",
		"-crf", "23", "-maxrate", kbps, "-bufsize", kbps,
		"-force_key_frames", "expr:gte(t,n_forced*" + strconv.FormatFloat(e.keyEvery.Seconds(), 'f', -1, 64) + ")",
		"-forced-idr", "1", "-x264-params", "keyint=infinite:scenecut=0:open-gop=0",
		"-r", "30", "-enc_time_base", "1/90000", "-fps_mode", "passthrough",
		"-flush_packets", "1", "-muxdelay", "0", "-muxpreload", "0",
		"-f", "mpegts", "pipe:1"}
}

// run runs one ffmpeg from key frame first until it fails, the encoder closes or a key frame
// of a larger picture arrives, which it returns for the next run.
func (e *h264Encoder) run(first vpxFrame) (*vpxFrame, error) {
	w, h := vpxSize(e.mime, first.data)
	if w < 2 || h < 2 {
		return nil, errors.New("the key frame has no picture size")
	}
	cmd := exec.CommandContext(e.ctx, e.ffmpeg, e.args(w, h)...)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 2 * time.Second
	stderr := &tail{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.ffmpeg, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var rerr error
	go func() {
		defer wg.Done()
		rerr = e.readTS(stdout, first.pts)
	}()
	// Closing stdin has ffmpeg flush what it holds and exit.
	next, werr := e.feed(stdin, first, w, h)
	_ = stdin.Close()
	if werr != nil && e.ctx.Err() == nil {
		_ = cmd.Process.Kill()
	}
	wg.Wait()
	err = cmd.Wait()
	if e.ctx.Err() != nil {
		return nil, nil
	}
	if err = errors.Join(werr, rerr, err, errorIf(stderr.String())); err != nil {
		return nil, err
	}
	return next, nil
}

// feed writes frames to ffmpeg as IVF until the encoder closes, or returns the first key
// frame of a picture larger than width x height. pion's IVF writer takes RTP packets, so
// each frame goes in as one packet with a minimal payload descriptor, its timestamp the
// frame's time since the run's first, in 90 kHz ticks.
func (e *h264Encoder) feed(stdin io.Writer, first vpxFrame, width, height int) (*vpxFrame, error) {
	bw := bufio.NewWriterSize(stdin, 64<<10)
	iw, err := ivfwriter.NewWith(bw, ivfwriter.WithCodec(e.mime), ivfwriter.WithWidthAndHeight(uint16(width), uint16(height)),
		ivfwriter.WithFrameRate(1, h264Clock), ivfwriter.WithDirectPTS())
	if err != nil {
		return nil, fmt.Errorf("ivf: %w", err)
	}
	vp9 := strings.EqualFold(e.mime, webrtc.MimeTypeVP9)
	pkt := &rtp.Packet{Header: rtp.Header{Marker: true}}
	for f := first; ; {
		// VP8: S (start of partition); VP9: B and E (a whole frame), P on inter frames.
		desc := byte(0x10)
		if vp9 {
			desc = 0x0c
			if !f.key {
				desc |= 0x40
			}
		}
		pkt.Timestamp = uint32((f.pts - first.pts) * h264Clock / time.Second)
		pkt.Payload = append(append(pkt.Payload[:0], desc), f.data...)
		if err := iw.WriteRTP(pkt); err != nil {
			return nil, fmt.Errorf("write to ffmpeg: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return nil, fmt.Errorf("write to ffmpeg: %w", err)
		}
		select {
		case <-e.ctx.Done():
			return nil, nil
		case f = <-e.in:
		}
		if f.key {
			if w, h := vpxSize(e.mime, f.data); w*h > width*height {
				return &f, nil
			}
		}
	}
}

// readTS hands each H.264 access unit ffmpeg writes to out, on the session's timeline.
func (e *h264Encoder) readTS(r io.Reader, start time.Duration) error {
	rd := &mpegts.Reader{R: bufio.NewReaderSize(r, 64<<10)}
	if err := rd.Initialize(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("ffmpeg output: %w", err)
	}
	rd.OnDecodeError(func(err error) { e.log.Debug("whip: ffmpeg output", "err", err) })
	found := false
	for _, t := range rd.Tracks() {
		if _, ok := t.Codec.(*tscodecs.H264); ok {
			rd.OnDataH264(t, func(pts, _ int64, au [][]byte) error {
				e.out(start+time.Duration(pts)*time.Second/h264Clock, au)
				return nil
			})
			found = true
			break
		}
	}
	if !found {
		return errors.New("ffmpeg output has no H.264 track")
	}
	for {
		if err := rd.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
