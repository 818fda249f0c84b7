// Package netlimit caps the connections a server holds, in total and per client (an IPv4
// address or an IPv6 /64).
// Every accepted connection costs a goroutine, buffers and a file descriptor before anything
// is authenticated; the caps keep one client (or a few) from taking them all.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Limiter counts the connections accepted by the listeners it wraps, which share its caps.
//
// It hands the server the accepted connection itself, not a wrapper, so that the server's
// fast paths still apply (fasthttp writes a response's header and body in one writev only to
// a *net.TCPConn; a wrapper cost a quarter more CPU per cache hit). The server in turn tells
// the Limiter when it is done with a connection, from its ConnState hook: see Release.
type Limiter struct {
	total, perIP int
	onCap        func(ip string, perIPFull bool)

	mu   sync.Mutex
	held map[net.Conn]string // accepted connections not yet released, and their address
	byIP map[string]int
	shed atomic.Uint64
}

// New returns a Limiter that holds at most total connections, and at most perIP from one
// address; 0 leaves that cap off. onCap, if not nil, is told of each refused connection.
func New(total, perIP int, onCap func(ip string, perIPFull bool)) *Limiter {
	return &Limiter{total: total, perIP: perIP, onCap: onCap, held: map[net.Conn]string{}, byIP: map[string]int{}}
}

// Listen wraps ln: a connection past a cap is closed as soon as it is accepted, before the
// server reads from it (or, for TLS, shakes hands), and Accept waits for the next one.
func (l *Limiter) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

// Release frees the place of a connection the server is done with: closed, or hijacked (its
// new owner, such as a chat WebSocket, authenticated it and bounds it by its own rules).
// Servers call it from their ConnState hooks (http.StateClosed and http.StateHijacked,
// fasthttp.StateClosed and fasthttp.StateHijacked). c may be a TLS connection over an
// accepted one. Releasing twice, or a connection this Limiter did not accept, does nothing.
func (l *Limiter) Release(c net.Conn) {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = u.NetConn()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ip, ok := l.held[c]
	if !ok {
		return
	}
	delete(l.held, c)
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip) // the map holds only addresses with connections
	}
}

// Open is the number of connections held now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Refused is the number of connections closed at accept because a cap was reached.
func (l *Limiter) Refused() uint64 { return l.shed.Load() }

func (l *Limiter) acquire(c net.Conn) bool {
	ip := ClientOf(c.RemoteAddr())
	l.mu.Lock()
	perIPFull := l.perIP > 0 && l.byIP[ip] >= l.perIP
	ok := !perIPFull && (l.total <= 0 || len(l.held) < l.total)
	if ok {
		l.held[c] = ip
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
		if ln.l.acquire(c) {
			return c, nil
		}
		_ = c.Close()
	}
}

// ClientOf is who a connection from a counts against for a per-address cap: its IPv4 address,
// or its IPv6 /64, the block a single subscriber or host is given (and that edge tokens bind
// to). Counted by the full address, one IPv6 host could take a whole total cap.
func ClientOf(a net.Addr) string {
	var ip net.IP
	if t, ok := a.(*net.TCPAddr); ok {
		ip = t.IP
	} else {
		h, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		if ip = net.ParseIP(h); ip == nil {
			return h
		}
	}
	if ip.To4() != nil {
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
