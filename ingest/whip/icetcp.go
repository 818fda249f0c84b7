package whip

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"golang.org/x/time/rate"

	"glasscast/netlimit"
)

const (
	// iceTCPPerSession is how many ICE-TCP connections a session may need: a publisher tries
	// one per pair of its interfaces and our host candidates.
	iceTCPPerSession = 8
	// iceTCPPerIP bounds the ICE-TCP connections of one address: a few publishers behind one
	// NAT.
	iceTCPPerIP = 32
	// firstSTUNTimeout cuts an ICE-TCP connection that sends no STUN binding request for this
	// long; a publisher sends one as soon as it has connected (pion's default waits 30 s).
	firstSTUNTimeout = 5 * time.Second
)

// newICETCPMux serves ICE over TCP on l. Connections are accepted before anything is
// authenticated, and pion holds each until its first STUN request, then for as long as its
// username might still become a session's; so they are capped per address and in total (by
// MaxSessions), and idle ones are cut sooner than pion would.
func newICETCPMux(l net.Listener, maxSessions int, stunAlive time.Duration, log *slog.Logger) ice.TCPMux {
	warn := rate.NewLimiter(rate.Every(10*time.Second), 1)
	lim := netlimit.New(maxSessions*iceTCPPerSession, iceTCPPerIP, func(ip string, perIPFull bool) {
		if warn.Allow() {
			log.Warn("whip: ICE-TCP connection refused: too many open", "remote", ip, "perAddressFull", perIPFull,
				"maxPerAddress", iceTCPPerIP, "max", maxSessions*iceTCPPerSession)
		}
	})
	return ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:                     &limitedListener{Listener: lim.Listen(l), lim: lim},
		ReadBufferSize:               64,
		WriteBufferSize:              4 << 20, // as webrtc.NewICETCPMux
		FirstStunBindTimeout:         firstSTUNTimeout,
		AliveDurationForConnFromStun: stunAlive,
	})
}

// limitedListener hands pion connections that give their place in lim back when pion closes
// them (netlimit's Release, which HTTP servers call from their ConnState hooks).
type limitedListener struct {
	net.Listener
	lim *netlimit.Limiter
}

func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitedConn{Conn: c, lim: l.lim}, nil
}

type limitedConn struct {
	net.Conn
	lim  *netlimit.Limiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.lim.Release(c.Conn) })
	return err
}
