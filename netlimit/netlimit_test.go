package netlimit

import (
	"io"
	"net"
	"testing"
	"time"
)

// serve accepts on a limited listener and echoes what it gets, until the listener closes.
func serve(t *testing.T, l *Limiter) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Listen(raw)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(c, c)
				c.Close()
				l.Release(c) // as a server's ConnState hook does
			}()
		}
	}()
	return raw.Addr().String()
}

// served reports whether a connection is echoed (held by the server) rather than closed.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	return err == nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually retries f for a few seconds: the server frees a place only once it has seen the
// client's close.
func eventually(t *testing.T, f func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if f() {
			return true
		}
	}
	return false
}

func TestPerIPCap(t *testing.T) {
	var refusedIP string
	l := New(0, 3, func(ip string, perIP bool) {
		if perIP {
			refusedIP = ip
		}
	})
	addr := serve(t, l)
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c := dial(t, addr)
		if !served(t, c) {
			t.Fatalf("connection %d refused under the cap", i+1)
		}
		held = append(held, c)
	}
	if served(t, dial(t, addr)) {
		t.Fatal("the 4th connection of one address was served with a cap of 3")
	}
	if l.Refused() != 1 || l.Open() != 3 || refusedIP != "127.0.0.1" {
		t.Fatalf("refused %d, open %d, ip %q", l.Refused(), l.Open(), refusedIP)
	}
	held[0].Close()
	if !eventually(t, func() bool { return served(t, dial(t, addr)) }) {
		t.Fatal("a closed connection did not free its place")
	}
}

func TestTotalCap(t *testing.T) {
	l := New(2, 0, nil)
	addr := serve(t, l)
	a, b := dial(t, addr), dial(t, addr)
	if !served(t, a) || !served(t, b) {
		t.Fatal("refused under the cap")
	}
	if served(t, dial(t, addr)) {
		t.Fatal("a 3rd connection was served with a total cap of 2")
	}
}

func TestReleaseTwiceFreesOnce(t *testing.T) {
	l := New(0, 0, nil)
	a, b := &fakeConn{}, &fakeConn{}
	l.acquire(a)
	l.acquire(b)
	l.Release(a)
	l.Release(a)
	l.Release(&fakeConn{}) // never accepted
	if l.Open() != 1 || l.byIP["192.0.2.1"] != 1 {
		t.Fatalf("open %d, by ip %v", l.Open(), l.byIP)
	}
}

type fakeConn struct{ net.Conn }

func (f *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1} }

// One IPv6 /64 is one client for the per-address cap, as an IPv4 address is: the hosts of a
// subscriber's block share it. Another block counts apart, and an IPv4 address mapped into
// IPv6 counts as that IPv4 address.
func TestPerIPCapCountsIPv6By64(t *testing.T) {
	var refused []string
	l := New(0, 2, func(ip string, perIP bool) { refused = append(refused, ip) })
	conns := make(chan net.Conn, 8)
	ln := l.Listen(fakeListener{conns})
	go func() {
		for {
			if _, err := ln.Accept(); err != nil {
				return
			}
		}
	}()
	for _, a := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::ffff:1", "2001:db8:0:0:8000::9", "2001:db8:0:1::1", "::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1"} {
		conns <- addrConn{addr: &net.TCPAddr{IP: net.ParseIP(a), Port: 1}}
	}
	close(conns)
	if !eventually(t, func() bool { return l.Refused() == 3 }) || l.Open() != 5 {
		t.Fatalf("refused %d, open %d; want 3 refused (two more from one /64, one more from one IPv4 address), 5 open: %v", l.Refused(), l.Open(), refused)
	}
	if refused[0] != "2001:db8::/64" || refused[2] != "192.0.2.1" {
		t.Fatalf("refused as %q", refused)
	}
}

type addrConn struct {
	net.Conn
	addr net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.addr }
func (c addrConn) Close() error         { return nil }

// fakeListener hands out the connections sent on its channel, then fails.
type fakeListener struct{ conns chan net.Conn }

func (l fakeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l fakeListener) Close() error   { return nil }
func (l fakeListener) Addr() net.Addr { return &net.TCPAddr{} }
