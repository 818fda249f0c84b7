package whip

import "syscall"

// procAttr puts ffmpeg in its own process group, so that a terminal's Ctrl-C reaches only
// Glasscast, which then drains and stops it; and has the kernel kill it if Glasscast dies, so
// that no transcoder outlives the ingest that feeds it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
