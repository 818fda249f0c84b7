package e2e

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// latencyProxy is a TCP proxy standing in for a WAN link between two regions: every chunk of
// bytes is held for the one-way delay (plus jitter) in each direction, in order, as a long
// fibre would. The kernel here has no netem, and toxiproxy would be one more process to build.
//
// Cut drops every open connection and refuses new ones, as a lost link does to the processes
// on either side; Restore accepts again on the same address.
type latencyProxy struct {
	t      testing.TB
	Addr   string // host:port to dial instead of the target
	target string

	mu      sync.Mutex
	delay   time.Duration
	jitter  time.Duration
	ln      net.Listener // nil while cut
	conns   map[net.Conn]struct{}
	closed  bool
	cutting bool
}

// newLatencyProxy listens on a free port and forwards to target with delay ± jitter each way.
func newLatencyProxy(t testing.TB, target string, delay, jitter time.Duration) *latencyProxy {
	t.Helper()
	p := &latencyProxy{t: t, Addr: freePort(t), target: target, delay: delay, jitter: jitter, conns: map[net.Conn]struct{}{}}
	if err := p.listen(); err != nil {
		t.Fatalf("latency proxy: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

func (p *latencyProxy) listen() error {
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
	return nil
}

func (p *latencyProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

// SetDelay changes the one-way delay and jitter of new and open connections.
func (p *latencyProxy) SetDelay(delay, jitter time.Duration) {
	p.mu.Lock()
	p.delay, p.jitter = delay, jitter
	p.mu.Unlock()
}

// oneWay is the delay of one chunk: delay ± jitter, uniformly.
func (p *latencyProxy) oneWay() time.Duration {
	p.mu.Lock()
	d, j := p.delay, p.jitter
	p.mu.Unlock()
	if j > 0 {
		d += time.Duration(rand.Int64N(int64(2*j+1))) - j
	}
	return max(d, 0)
}

// Cut drops every connection and refuses new ones until Restore.
func (p *latencyProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.cutting = true
}

// Restore accepts connections again on the same address.
func (p *latencyProxy) Restore() {
	p.mu.Lock()
	cut := p.cutting
	p.cutting = false
	p.mu.Unlock()
	if !cut {
		return
	}
	// The port was ours a moment ago; another process may take it in between, which the
	// kernel makes very unlikely for a port outside the ephemeral range it is handing out.
	var err error
	for i := 0; i < 50; i++ {
		if err = p.listen(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Errorf("latency proxy %s: listen again after the cut: %v", p.Addr, err)
}

func (p *latencyProxy) close() {
	p.Cut()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// track adds c to the open connections, or reports false when the link is cut.
func (p *latencyProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutting || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *latencyProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *latencyProxy) serve(down net.Conn) {
	defer down.Close()
	if !p.track(down) {
		return
	}
	defer p.untrack(down)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, down); done <- struct{}{} }()
	go func() { p.pipe(down, up); done <- struct{}{} }()
	<-done // one side ended: end both, as a TCP proxy without half-close would
	up.Close()
	down.Close()
	<-done
}

// chunk is bytes read from one side, due on the other side at due.
type chunk struct {
	b   []byte
	due time.Time
	eof bool
}

// pipe copies src to dst, holding each chunk for the one-way delay. A reader stamps chunks as
// they arrive and a writer releases them in order; due times never go backwards, so jitter
// reorders nothing (TCP would not either).
func (p *latencyProxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, 4096)
	go func() {
		var last time.Time
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			due := time.Now().Add(p.oneWay())
			if due.Before(last) {
				due = last
			}
			last = due
			if n > 0 {
				q <- chunk{b: append([]byte(nil), buf[:n]...), due: due}
			}
			if err != nil {
				q <- chunk{eof: true, due: due}
				close(q)
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.due))
		if c.eof {
			break
		}
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	// Drain so the reader never blocks on a full queue after the writer gave up.
	go func() {
		for range q {
		}
	}()
}

// TestLatencyProxy: bytes arrive in order, each way about the configured delay later; Cut drops
// open connections and refuses new ones; Restore accepts again.
func TestLatencyProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }() // echo
		}
	}()
	p := newLatencyProxy(t, ln.Addr().String(), 40*time.Millisecond, 5*time.Millisecond)

	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Many small writes with jitter must come back byte for byte in order.
	want := make([]byte, 0, 200*1000)
	go func() {
		for i := 0; i < 200; i++ {
			b := make([]byte, 1000)
			for j := range b {
				b[j] = byte(i + j)
			}
			_, _ = c.Write(b)
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 200; i++ {
		for j := 0; j < 1000; j++ {
			want = append(want, byte(i+j))
		}
	}
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("byte %d: got %d, want %d (reordered)", i, got[i], want[i])
		}
	}

	// A round trip costs two one-way delays.
	rtt := func() time.Duration {
		start := time.Now()
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if d := rtt(); d < 70*time.Millisecond {
		t.Errorf("round trip %v through a 40±5 ms proxy, want at least 70 ms", d)
	}
	p.SetDelay(150*time.Millisecond, 0)
	if d := rtt(); d < 300*time.Millisecond {
		t.Errorf("round trip %v after SetDelay(150 ms), want at least 300 ms", d)
	}
	p.SetDelay(0, 0)

	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("open connection survived the cut: %v", err)
	}
	if c2, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		c2.Close()
		t.Fatal("the proxy accepted a connection while cut")
	}
	p.Restore()
	c3, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatalf("dial after Restore: %v", err)
	}
	defer c3.Close()
	c = c3
	if d := rtt(); d > 5*time.Second {
		t.Errorf("round trip %v after Restore", d)
	}
}
