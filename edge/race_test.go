//go:build race

package edge

// raceEnabled: the race detector slows every goroutine several times over, so latency bounds
// are checked loosely under it.
const raceEnabled = true
