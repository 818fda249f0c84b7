//go:build !linux

package whip

import "net"

// setReadBuffer asks for an n-byte receive buffer on c, which the system may cap.
func setReadBuffer(c *net.UDPConn, n int) {
	_ = c.SetReadBuffer(n) // a smaller buffer still works
}
