package transcode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// x264Presets are the encoder speeds a ladder steps through, fastest last: a run killed for
// falling behind real time restarts one step faster.
var x264Presets = []string{"medium", "fast", "faster", "veryfast", "superfast", "ultrafast"}

// ffmpegArgs returns the command line of one run: MPEG-TS video on stdin, and for rung i an
// H.264 MPEG-TS on file descriptor 3+i. Timestamps pass through untouched (-copyts,
// passthrough frame timing) and key frames are forced exactly where the input has them, as
// IDRs, with no others (no scene cuts, no GOP limit): that is what keeps every rung's segments
// aligned with the source's. zerolatency drops B-frames and look-ahead, so each output frame
// leaves ffmpeg as soon as it is encoded.
func ffmpegArgs(rungs []Rung, preset string) []string {
	args := []string{"-hide_banner", "-nostats", "-nostdin", "-loglevel", "error",
		"-copyts", "-probesize", "2000000", "-analyzeduration", "200000", "-thread_type", "slice",
		"-f", "mpegts", "-i", "pipe:0"}
	for i, r := range rungs {
		vf := "scale=" + strconv.Itoa(r.Width) + ":" + strconv.Itoa(r.Height)
		if r.HalfRate {
			// Every even frame and every key frame, with the input's timestamps.
			vf = `select=key+not(mod(n\,2)),` + vf
		}
		profile := "high"
		if min(r.Width, r.Height) <= 480 {
			profile = "main"
		}
		kbps := strconv.Itoa(max(1, r.VideoBitrate/1000)) + "k"
		args = append(args,
			"-map", "0:v:0", "-vf", vf, "-pix_fmt", "yuv420p",
			"-c:v", "libx264", "-preset", preset, "-tune", "zerolatency", "-profile:v", profile,
			"-b:v", kbps, "-maxrate", kbps, "-bufsize", kbps,
			"-forced-idr", "1", "-force_key_frames", "source",
			"-x264-params", "keyint=infinite:scenecut=0:open-gop=0",
			// The rung's exact rate goes into the SPS (VUI timing), which packagers and players
			// trust over timestamps; a 90 kHz encoder clock keeps the timestamps exact.
			"-r", strconv.FormatFloat(r.FrameRate, 'f', -1, 64), "-enc_time_base", "1/90000",
			"-fps_mode", "passthrough",
			"-flush_packets", "1", "-muxdelay", "0", "-muxpreload", "0", "-omit_video_pes_length", "0",
			"-f", "mpegts", "pipe:"+strconv.Itoa(3+i))
	}
	return args
}

// inputFrame is one access unit on its way into ffmpeg, timestamps in 90 kHz ticks.
type inputFrame struct {
	pts, dts int64
	au       [][]byte // parameter sets included at key frames
}

// outputFunc receives rung i's access units as ffmpeg writes them (33-bit 90 kHz pts).
type outputFunc func(rung int, pts int64, au [][]byte)

// queueFrames bounds the frames waiting for ffmpeg's stdin: about 8 s of 60 fps video. The lag
// check ends a run that falls this far behind long before the queue fills.
const queueFrames = 512

// process is one run of ffmpeg. Its queue never blocks the caller: a full queue is reported
// and the run is ended by its owner.
type process struct {
	cmd     *exec.Cmd
	queue   chan inputFrame
	exited  chan struct{}
	waitErr error
	stderr  *tail
	readers sync.WaitGroup
	writer  chan struct{} // closed when the stdin writer ends
	full    atomic.Bool
	closed  bool
}

// startProcess runs bin with args and starts feeding and reading it. onFrame is called from
// one goroutine per output.
func startProcess(bin string, args []string, outputs int, h265 bool, onFrame outputFunc) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = procAttr()
	p := &process{cmd: cmd, queue: make(chan inputFrame, queueFrames), exited: make(chan struct{}),
		stderr: &tail{}, writer: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	var ours, theirs []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	for range outputs {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(ours)
			closeAll(theirs)
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		ours, theirs = append(ours, r), append(theirs, w)
	}
	cmd.ExtraFiles = theirs
	if err := cmd.Start(); err != nil {
		closeAll(ours)
		closeAll(theirs)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	// Only ffmpeg may hold the write ends, so that its death ends our reads.
	closeAll(theirs)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.write(stdin, h265)
	for i, r := range ours {
		p.readers.Add(1)
		go p.read(i, r, onFrame)
	}
	return p, nil
}

// enqueue hands a frame to the stdin writer, or reports the queue full.
func (p *process) enqueue(f inputFrame) bool {
	if p.closed {
		return false
	}
	select {
	case p.queue <- f:
		return true
	default:
		p.full.Store(true)
		return false
	}
}

// closeInput ends ffmpeg's input; it then flushes its encoders and exits.
func (p *process) closeInput() {
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
}

func (p *process) write(stdin io.WriteCloser, h265 bool) {
	defer close(p.writer)
	defer stdin.Close()
	bw := bufio.NewWriterSize(stdin, 64<<10)
	track := &mpegts.Track{Codec: &tscodecs.H264{}}
	if h265 {
		track.Codec = &tscodecs.H265{}
	}
	w := &mpegts.Writer{W: bw, Tracks: []*mpegts.Track{track}}
	err := w.Initialize()
	for f := range p.queue {
		if err != nil {
			continue // keep draining so that the owner never blocks on a dead run
		}
		if h265 {
			err = w.WriteH265(track, f.pts, f.dts, f.au)
		} else {
			err = w.WriteH264(track, f.pts, f.dts, f.au)
		}
		if err == nil {
			// Each frame goes out at once: ffmpeg's latency, not ours, decides when it is encoded.
			err = bw.Flush()
		}
	}
}

func (p *process) read(i int, r *os.File, onFrame outputFunc) {
	defer p.readers.Done()
	defer r.Close()
	rd := &mpegts.Reader{R: r}
	if err := rd.Initialize(); err != nil {
		return
	}
	rd.OnDecodeError(func(error) {})
	for _, t := range rd.Tracks() {
		if _, ok := t.Codec.(*tscodecs.H264); ok {
			rd.OnDataH264(t, func(pts, _ int64, au [][]byte) error {
				onFrame(i, pts, au)
				return nil
			})
			break
		}
	}
	for rd.Read() == nil {
	}
}

// hasExited reports whether ffmpeg is gone.
func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop ends the run: with drain, ffmpeg gets up to drain to encode what it was given after
// its input is closed; then it is killed. It returns once ffmpeg has been reaped and its
// outputs read to the end (or after a bounded wait for readers stuck in a callback).
func (p *process) stop(drain time.Duration) {
	p.closeInput()
	if drain > 0 {
		select {
		case <-p.exited:
		case <-time.After(drain):
		}
	}
	if !p.hasExited() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	done := make(chan struct{})
	go func() {
		p.readers.Wait()
		<-p.writer
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// exitReason describes how ffmpeg ended, with the last thing it printed.
func (p *process) exitReason() string {
	var sb strings.Builder
	if p.waitErr != nil {
		sb.WriteString(p.waitErr.Error())
	} else {
		sb.WriteString("exited")
	}
	if s := p.stderr.String(); s != "" {
		sb.WriteString(": ")
		sb.WriteString(s)
	}
	return sb.String()
}

// tail keeps the end of ffmpeg's error output for the log.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailBytes = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailBytes {
		t.b = append(t.b[:0], t.b[len(t.b)-tailBytes:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// errNoFFmpeg is returned when the configured ffmpeg cannot be found.
var errNoFFmpeg = errors.New("ffmpeg not found")

// lookFFmpeg resolves the configured ffmpeg command.
func lookFFmpeg(bin string) (string, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoFFmpeg, err)
	}
	return path, nil
}
