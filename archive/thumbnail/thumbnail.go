// Package thumbnail turns a recorded key frame into a JPEG by running ffmpeg on it. A
// subprocess rather than a Go decoder: no maintained pure-Go H.264/H.265 decoder exists, ffmpeg
// is already the transcoder Glasscast runs, and one short process every few seconds per
// channel costs about a tenth of a second of CPU.
package thumbnail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"os/exec"
	"strconv"
	"time"

	"glasscast/archive/remux"
)

// ErrNoFFmpeg is returned when no ffmpeg binary can be found.
var ErrNoFFmpeg = errors.New("ffmpeg not found: thumbnails need it on the PATH")

// Maker makes thumbnails.
type Maker struct {
	// FFmpeg is the ffmpeg binary; empty looks "ffmpeg" up on the PATH.
	FFmpeg string
	// Timeout bounds one decode; default 10 s.
	Timeout time.Duration
}

// Available reports whether ffmpeg can be run.
func (m *Maker) Available() error {
	_, err := exec.LookPath(m.bin())
	if err != nil {
		return ErrNoFFmpeg
	}
	return nil
}

func (m *Maker) bin() string {
	if m.FFmpeg != "" {
		return m.FFmpeg
	}
	return "ffmpeg"
}

// JPEG decodes the key frame and encodes it as a JPEG, scaled to height (keeping the aspect
// ratio, even width) when height is positive. It returns the picture's size.
func (m *Maker) JPEG(ctx context.Context, kf remux.Keyframe, height int) ([]byte, int, int, error) {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	format := "h264"
	if kf.H265 {
		format = "hevc"
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-f", format, "-i", "pipe:0", "-frames:v", "1"}
	if height > 0 {
		args = append(args, "-vf", "scale=-2:"+strconv.Itoa(height))
	}
	args = append(args, "-q:v", "3", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1")
	cmd := exec.CommandContext(ctx, m.bin(), args...)
	cmd.Stdin = bytes.NewReader(kf.AnnexB)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, 0, 0, ErrNoFFmpeg
		}
		return nil, 0, 0, fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(out.Bytes()))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("ffmpeg wrote no JPEG: %w", err)
	}
	return out.Bytes(), cfg.Width, cfg.Height, nil
}
