// Package netlimit caps the connections a server holds, in total and per client IP address.
// Every accepted connection costs a goroutine, buffers and a file descriptor before anything
// is authenticated; the caps keep one client (or a few) from taking them all.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Limiter counts the open connections of the listeners it wraps, which share its caps.
type Limiter struct {
	total, perIP int

	mu    sync.Mutex
	open  int
	byIP  map[string]int
	shed  atomic.Uint64
	onCap func(ip string, perIPFull bool)
}

// New returns a Limiter that holds at most total connections, and at most perIP from one
// address; 0 leaves that cap off. onCap, if not nil, is told of each refused connection.
func New(total, perIP int, onCap func(ip string, perIPFull bool)) *Limiter {
	return &Limiter{total: total, perIP: perIP, byIP: map[string]int{}, onCap: onCap}
}

// Listen wraps ln: a connection past a cap is closed as soon as it is accepted, before the
// server reads from it (or, for TLS, shakes hands), and Accept waits for the next one.
// Closing an accepted connection frees its place.
func (l *Limiter) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

// Open is the number of connections held now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Refused is the number of connections closed at accept because a cap was reached.
func (l *Limiter) Refused() uint64 { return l.shed.Load() }

func (l *Limiter) acquire(ip string) bool {
	l.mu.Lock()
	perIPFull := l.perIP > 0 && l.byIP[ip] >= l.perIP
	ok := !perIPFull && (l.total <= 0 || l.open < l.total)
	if ok {
		l.open++
		l.byIP[ip]++
	}
	l.mu.Unlock()
	if !ok {
		l.shed.Add(1)
		if l.onCap != nil {
			l.onCap(ip, perIPFull)
		}
	}
	return ok
}

func (l *Limiter) release(ip string) {
	l.mu.Lock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip) // the map holds only addresses with open connections
	}
	l.mu.Unlock()
}

type listener struct {
	net.Listener
	l *Limiter
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if !ln.l.acquire(ip) {
			_ = c.Close()
			continue
		}
		return &conn{Conn: c, l: ln.l, ip: ip}, nil
	}
}

// conn gives its place back once, however often it is closed.
type conn struct {
	net.Conn
	l    *Limiter
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
