//go:build !linux

package whip

import "syscall"

// procAttr has no portable equivalent of Linux's parent-death signal; the ingest stops ffmpeg
// itself when a stream ends or the process shuts down.
func procAttr() *syscall.SysProcAttr { return nil }
