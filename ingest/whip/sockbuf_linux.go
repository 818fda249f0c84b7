package whip

import (
	"net"
	"syscall"
)

// setReadBuffer asks for an n-byte receive buffer on c. The kernel caps SO_RCVBUF at
// net.core.rmem_max (208 KB unless raised); a process with CAP_NET_ADMIN sets it past that
// cap with SO_RCVBUFFORCE, as other UDP media servers do, and one without gets what the cap
// allows.
func setReadBuffer(c *net.UDPConn, n int) {
	if raw, err := c.SyscallConn(); err == nil {
		var serr error
		if raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) }) == nil && serr == nil {
			return
		}
	}
	_ = c.SetReadBuffer(n) // a smaller buffer still works
}
