//go:build unix

package chat

import (
	"errors"
	"syscall"
)

// tryWrite writes b to the socket without blocking: it returns how much the kernel took at
// once, which is all of it unless the client's receive window is full.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true // never wait for the socket to become writable: the writer goroutine does
	})
	if err != nil {
		return 0, err
	}
	if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR) {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}
