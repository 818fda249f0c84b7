package ingest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// A panic in a goroutine that defers Recovered ends that goroutine only (without it, the test
// binary dies), after the goroutine's own clean-up, and is logged with the stack down to it.
func TestRecoveredEndsOnlyThePanickingGoroutine(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var wg sync.WaitGroup
	cleaned := false
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer Recovered(log, "a test connection")
		defer func() { cleaned = true }()
		var m map[string]int
		m["boom"]++ // a nil map write, as a parser bug would make
	}()
	wg.Wait()
	if !cleaned {
		t.Error("the goroutine's own clean-up did not run")
	}
	out := logs.String()
	if !strings.Contains(out, "ingest: a test connection panicked") || !strings.Contains(out, "assignment to entry in nil map") || !strings.Contains(out, "recover_test.go") {
		t.Errorf("log:\n%s", out)
	}
}
