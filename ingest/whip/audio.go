package whip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

const (
	// maxAudioQueue bounds the Opus packets waiting for ffmpeg (5 s of 20 ms packets); past
	// it packets are dropped (and ffmpeg fills the gap with silence).
	maxAudioQueue = 250
	// aacFrame is the samples in one AAC-LC frame.
	aacFrame = 1024
	// maxRestartWait is the longest pause before a crashed ffmpeg is started again.
	maxRestartWait = 5 * time.Second
)

// aacEncoder transcodes Opus packets to AAC through a supervised ffmpeg: Ogg in on stdin,
// ADTS out on stdout. An ffmpeg that dies is started again (with a growing pause) at the next
// packet, whose timestamp its output then starts from. Browsers send Opus only, and Glasscast
// channels carry AAC, which every HLS player plays.
type aacEncoder struct {
	ffmpeg string
	log    *slog.Logger
	out    func(pts time.Duration, au []byte)
	in     chan opusPacket
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	drops  int
}

type opusPacket struct {
	pkt *rtp.Packet
	pts time.Duration
}

func newAACEncoder(ctx context.Context, ffmpeg string, log *slog.Logger, out func(time.Duration, []byte)) *aacEncoder {
	e := &aacEncoder{ffmpeg: ffmpeg, log: log, out: out, in: make(chan opusPacket, maxAudioQueue), done: make(chan struct{})}
	e.ctx, e.cancel = context.WithCancel(ctx)
	go e.supervise()
	return e
}

// write queues a packet; it never blocks the RTP reader.
func (e *aacEncoder) write(pkt *rtp.Packet, pts time.Duration) {
	select {
	case e.in <- opusPacket{pkt, pts}:
	default:
		e.drops++
		if e.drops%50 == 1 {
			e.log.Warn("whip: Opus packets dropped: the audio transcoder falls behind", "dropped", e.drops)
		}
	}
}

// close stops ffmpeg and waits for it.
func (e *aacEncoder) close() {
	e.cancel()
	<-e.done
}

func (e *aacEncoder) supervise() {
	defer close(e.done)
	wait := 250 * time.Millisecond
	for {
		var first opusPacket
		select {
		case <-e.ctx.Done():
			return
		case first = <-e.in:
		}
		started := time.Now()
		err := e.run(first)
		if e.ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			wait = 250 * time.Millisecond
		}
		e.log.Warn("whip: the audio transcoder (ffmpeg) stopped; restarting", "err", err, "after", wait)
		// Audio that arrives meanwhile is dropped: the restarted ffmpeg starts from now.
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
		wait = min(2*wait, maxRestartWait)
	}
}

// ffmpegArgs decode Ogg Opus as it arrives and encode AAC-LC; aresample fills gaps in the
// input (lost packets, DTX) with silence, so output frames count time from the first packet.
var ffmpegArgs = []string{"-hide_banner", "-loglevel", "error", "-nostats",
	"-fflags", "+nobuffer", "-probesize", "32", "-analyzeduration", "0", "-f", "ogg", "-i", "pipe:0",
	"-af", "aresample=async=1000:first_pts=0", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
	"-flush_packets", "1", "-f", "adts", "pipe:1"}

// run runs one ffmpeg until it fails or the encoder closes.
func (e *aacEncoder) run(first opusPacket) error {
	cmd := exec.CommandContext(e.ctx, e.ffmpeg, ffmpegArgs...)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 2 * time.Second
	stderr := &tail{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", e.ffmpeg, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var rerr error
	go func() {
		defer wg.Done()
		rerr = e.readADTS(stdout, first.pts)
	}()
	werr := e.feed(stdin, first)
	_ = stdin.Close()
	if werr != nil && e.ctx.Err() == nil {
		_ = cmd.Process.Kill()
	}
	wg.Wait()
	err = cmd.Wait()
	if e.ctx.Err() != nil {
		return nil
	}
	return errors.Join(werr, rerr, err, errorIf(stderr.String()))
}

func errorIf(s string) error {
	if s == "" {
		return nil
	}
	return errors.New("ffmpeg: " + s)
}

// feed writes Opus packets as Ogg pages to ffmpeg until the encoder closes.
func (e *aacEncoder) feed(stdin io.Writer, first opusPacket) error {
	ogg, err := oggwriter.NewWith(stdin, 48000, 2)
	if err != nil {
		return fmt.Errorf("ogg: %w", err)
	}
	if err := ogg.WriteRTP(first.pkt); err != nil {
		return fmt.Errorf("write to ffmpeg: %w", err)
	}
	for {
		select {
		case <-e.ctx.Done():
			return nil
		case p := <-e.in:
			if err := ogg.WriteRTP(p.pkt); err != nil {
				return fmt.Errorf("write to ffmpeg: %w", err)
			}
		}
	}
}

// readADTS hands each AAC frame ffmpeg writes to out, timed from the first packet's time.
func (e *aacEncoder) readADTS(r io.Reader, start time.Duration) error {
	br := bufio.NewReaderSize(r, 8192)
	hdr := make([]byte, 7)
	for n := int64(0); ; {
		if _, err := io.ReadFull(br, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if hdr[0] != 0xff || hdr[1]&0xf0 != 0xf0 {
			return errors.New("ffmpeg output lost ADTS sync")
		}
		size := int(hdr[3]&0x03)<<11 | int(hdr[4])<<3 | int(hdr[5])>>5
		if size < len(hdr) {
			return fmt.Errorf("ADTS frame of %d bytes", size)
		}
		buf := make([]byte, size)
		copy(buf, hdr)
		if _, err := io.ReadFull(br, buf[len(hdr):]); err != nil {
			return err
		}
		var pkts mpeg4audio.ADTSPackets
		if err := pkts.Unmarshal(buf); err != nil {
			return fmt.Errorf("ffmpeg output: %w", err)
		}
		for _, pk := range pkts {
			e.out(start+time.Duration(n*aacFrame*int64(time.Second)/48000), pk.AU)
			n++
		}
	}
}

// tail keeps the last bytes of ffmpeg's error output for the log.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 1024 {
		t.buf = t.buf[len(t.buf)-1024:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
