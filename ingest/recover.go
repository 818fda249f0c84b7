package ingest

import (
	"log/slog"
	"runtime/debug"
)

// Recovered, deferred at the top of a goroutine that reads one publisher's input, logs a panic
// there with its stack and ends the goroutine: a bug that one publisher's input reaches (in a
// protocol library, a parser or the packager) then costs that publish, not the node and every
// other channel on it. The goroutine's own deferred clean-up (closing the connection, ending
// the broadcast) has run by then.
func Recovered(log *slog.Logger, what string) {
	if v := recover(); v != nil {
		log.Error("ingest: "+what+" panicked; the publish ends", "panic", v, "stack", string(debug.Stack()))
	}
}
