package edge

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitContext(t *testing.T) {
	c := newWaitContext(time.Now().Add(30 * time.Millisecond))
	if d, ok := c.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
		t.Fatalf("deadline %v %v", d, ok)
	}
	if c.Err() != nil {
		t.Fatal("done before its deadline")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not done at its deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", c.Err())
	}
	c.release()

	// Released without ever waiting: no timer was made.
	c = newWaitContext(time.Now().Add(time.Hour))
	c.release()
	if c.ctx != nil {
		t.Fatal("a timer made for a request that never waited")
	}

	// A child context sees the deadline.
	c = newWaitContext(time.Now().Add(20 * time.Millisecond))
	child, cancel := context.WithCancel(c)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child not done at the parent's deadline")
	}
	c.release()
}
