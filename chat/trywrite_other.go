//go:build !unix

package chat

import "syscall"

// tryWrite never writes where non-blocking writes are not wired up: the writer goroutine does.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) { return 0, nil }
