package e2e

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// udpProxy stands in for a lossy WAN link in front of a UDP server (SRT): each datagram is
// held for the one-way delay and dropped with the given probability, in each direction. No
// real UDP impairment tool runs here (the kernel has no netem, and there is no tc), so this
// is the link. It serves one client address at a time, which is all a publisher needs.
type udpProxy struct {
	Addr    string // host:port to send to instead of the target
	target  *net.UDPAddr
	delay   time.Duration
	loss    float64
	conn    *net.UDPConn // the side the client talks to
	up      *net.UDPConn // the side facing the target
	rng     *rand.Rand
	rngMu   sync.Mutex
	client  atomic.Pointer[net.UDPAddr]
	dropped atomic.Int64
	passed  atomic.Int64
	done    chan struct{}
}

// newUDPProxy forwards datagrams between a client and target with delay and loss each way.
func newUDPProxy(t *testing.T, target string, delay time.Duration, loss float64) *udpProxy {
	t.Helper()
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, ta)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	p := &udpProxy{Addr: conn.LocalAddr().String(), target: ta, delay: delay, loss: loss, conn: conn, up: up,
		rng: rand.New(rand.NewPCG(1, 2)), done: make(chan struct{})}
	go p.pump(true)
	go p.pump(false)
	t.Cleanup(p.close)
	return p
}

func (p *udpProxy) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.conn.Close()
	p.up.Close()
}

func (p *udpProxy) drop() bool {
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	return p.rng.Float64() < p.loss
}

// pump moves datagrams one way: from the client to the target (toTarget) or back.
func (p *udpProxy) pump(toTarget bool) {
	buf := make([]byte, 65536)
	for {
		var n int
		var err error
		if toTarget {
			var from *net.UDPAddr
			n, from, err = p.conn.ReadFromUDP(buf)
			if err == nil {
				p.client.Store(from)
			}
		} else {
			n, err = p.up.Read(buf)
		}
		if err != nil {
			return
		}
		if p.drop() {
			p.dropped.Add(1)
			continue
		}
		p.passed.Add(1)
		b := append([]byte(nil), buf[:n]...)
		// Each datagram is delivered after the same delay, so they stay in order as on a
		// long link; timers fire in order of expiry.
		time.AfterFunc(p.delay, func() {
			select {
			case <-p.done:
				return
			default:
			}
			if toTarget {
				_, _ = p.up.Write(b)
			} else if c := p.client.Load(); c != nil {
				_, _ = p.conn.WriteToUDP(b, c)
			}
		})
	}
}
