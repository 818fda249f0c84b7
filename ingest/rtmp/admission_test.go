package rtmp

import (
	"net"
	"testing"
)

// fakeConn is a connection from addr that records its closing.
type fakeConn struct {
	net.Conn
	addr   net.Addr
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.addr }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

func from(ip string) *fakeConn {
	return &fakeConn{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

// admitClosing admits c and closes what it evicts, as the accept loop does.
func admitClosing(a *admission, c net.Conn) *pendingConn {
	pc, evicted := a.admit(c)
	for _, e := range evicted {
		e.raw.Close()
	}
	return pc
}

func TestAdmissionPerAddress(t *testing.T) {
	a := newAdmission(100, 2, 10)
	c1, c2, c3, other := from("192.0.2.1"), from("192.0.2.1"), from("192.0.2.1"), from("192.0.2.2")
	admitClosing(a, c1)
	admitClosing(a, c2)
	admitClosing(a, other)
	if c1.closed || c2.closed || other.closed {
		t.Fatal("connections under the cap were closed")
	}
	admitClosing(a, c3)
	if !c1.closed || c2.closed || c3.closed || other.closed {
		t.Fatalf("third connection of one address: closed %v %v %v, other %v; want only the oldest", c1.closed, c2.closed, c3.closed, other.closed)
	}
	if p, _ := a.counts(); p != 3 {
		t.Fatalf("%d pending, want 3", p)
	}
}

func TestAdmissionIPv6Prefix(t *testing.T) {
	a := newAdmission(100, 1, 10)
	c1, c2 := from("2001:db8:1:2::1"), from("2001:db8:1:2::ffff")
	admitClosing(a, c1)
	admitClosing(a, c2)
	if !c1.closed {
		t.Fatal("two addresses of one /64 were counted apart")
	}
}

// TestAdmissionPoolFull: a full pending pool makes room by closing its oldest connection, so
// the newest (the publisher who just arrived) is served.
func TestAdmissionPoolFull(t *testing.T) {
	a := newAdmission(3, 8, 10)
	var cs []*fakeConn
	for i := range 5 {
		c := from("198.51.100." + string(rune('1'+i)))
		cs = append(cs, c)
		admitClosing(a, c)
	}
	for i, c := range cs {
		if want := i < 2; c.closed != want {
			t.Fatalf("connection %d closed=%v, want %v", i, c.closed, want)
		}
	}
}

// TestAdmissionPublishersApart: publishers leave the pending pool for their own, which
// pending connections never fill and whose limit refuses new publishers.
func TestAdmissionPublishersApart(t *testing.T) {
	a := newAdmission(2, 8, 1)
	pub := admitClosing(a, from("203.0.113.1"))
	if ok, _ := a.promote(pub); !ok {
		t.Fatal("promote failed")
	}
	for range 10 {
		admitClosing(a, from("203.0.113.2"))
	}
	if p, n := a.counts(); p != 2 || n != 1 {
		t.Fatalf("pending %d publishers %d, want 2 and 1", p, n)
	}
	second := admitClosing(a, from("203.0.113.3"))
	if ok, full := a.promote(second); ok || !full {
		t.Fatalf("promote past maxPublishers: ok=%v full=%v", ok, full)
	}
	a.done(second)
	a.leave()
	third := admitClosing(a, from("203.0.113.4"))
	if ok, _ := a.promote(third); !ok {
		t.Fatal("a publisher slot was not released")
	}
	// An evicted connection cannot become a publisher.
	a.leave()
	old := admitClosing(a, from("203.0.113.5"))
	admitClosing(a, from("203.0.113.6"))
	admitClosing(a, from("203.0.113.7"))
	if ok, full := a.promote(old); ok || full {
		t.Fatalf("an evicted connection was promoted: ok=%v full=%v", ok, full)
	}
	a.done(old)
	if p, _ := a.counts(); p != 2 {
		t.Fatalf("%d pending, want 2", p)
	}
}
