package rtmp

import (
	"container/list"
	"net"
	"sync"

	"glasscast/netlimit"
)

// admission decides which connections the ingest holds. A connection is pending from accept
// until its stream key is accepted, then a publisher; the two have separate pools, so sockets
// that never authenticate can take no publisher's place.
//
// When the pending pool is full, or an address already holds its share of it, the oldest
// pending connection (of that address, or overall) is closed to make room: refusing the
// newest instead would let anyone who opens maxPending idle sockets every handshake timeout
// lock every publisher out, while evicting the oldest makes an attacker open maxPending
// sockets within the few milliseconds a real publisher's handshake takes. A real publisher is
// always the newest socket when it arrives; an idle socket is old by the time it matters.
type admission struct {
	maxPending, maxPerIP, maxPublishers int

	mu         sync.Mutex
	pending    list.List             // of *pendingConn, oldest first
	byIP       map[string]*list.List // each address's pending connections, oldest first
	publishers int
}

// pendingConn is an accepted connection in the pending pool.
type pendingConn struct {
	raw     net.Conn // the TCP connection, closed on eviction (never the TLS layer: no close_notify write)
	ip      string
	elem    *list.Element // in admission.pending; nil once the connection left the pool
	ipElem  *list.Element
	evicted bool
}

func newAdmission(maxPending, maxPerIP, maxPublishers int) *admission {
	return &admission{maxPending: maxPending, maxPerIP: maxPerIP, maxPublishers: maxPublishers, byIP: map[string]*list.List{}}
}

// admit puts a new connection in the pending pool and returns the connections it pushed out;
// the caller closes them.
func (a *admission) admit(raw net.Conn) (*pendingConn, []*pendingConn) {
	pc := &pendingConn{raw: raw, ip: netlimit.ClientOf(raw.RemoteAddr())}
	a.mu.Lock()
	defer a.mu.Unlock()
	var evicted []*pendingConn
	if l := a.byIP[pc.ip]; l != nil && l.Len() >= a.maxPerIP {
		evicted = append(evicted, a.evict(l.Front().Value.(*pendingConn)))
	}
	for a.pending.Len() >= a.maxPending {
		evicted = append(evicted, a.evict(a.pending.Front().Value.(*pendingConn)))
	}
	l := a.byIP[pc.ip]
	if l == nil {
		l = list.New()
		a.byIP[pc.ip] = l
	}
	pc.elem = a.pending.PushBack(pc)
	pc.ipElem = l.PushBack(pc)
	return pc, evicted
}

func (a *admission) evict(pc *pendingConn) *pendingConn {
	a.remove(pc)
	pc.evicted = true
	return pc
}

// remove takes pc out of the pending pool; the caller holds a.mu.
func (a *admission) remove(pc *pendingConn) {
	if pc.elem == nil {
		return
	}
	a.pending.Remove(pc.elem)
	l := a.byIP[pc.ip]
	l.Remove(pc.ipElem)
	if l.Len() == 0 {
		delete(a.byIP, pc.ip)
	}
	pc.elem, pc.ipElem = nil, nil
}

// done releases a pending connection that ended without becoming a publisher.
func (a *admission) done(pc *pendingConn) {
	a.mu.Lock()
	a.remove(pc)
	a.mu.Unlock()
}

// promote moves an authenticated connection from the pending pool to the publishers'. It
// fails if the connection was evicted meanwhile or every publisher slot is taken; either way
// the connection stays the caller's to close (done is still due).
func (a *admission) promote(pc *pendingConn) (ok, full bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pc.evicted {
		return false, false
	}
	if a.publishers >= a.maxPublishers {
		return false, true
	}
	a.remove(pc)
	a.publishers++
	return true, false
}

// leave releases a publisher's slot.
func (a *admission) leave() {
	a.mu.Lock()
	a.publishers--
	a.mu.Unlock()
}

// counts reports the pools' occupancy.
func (a *admission) counts() (pending, publishers int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending.Len(), a.publishers
}
