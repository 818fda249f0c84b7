package transcode

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"glasscast/ingest/packager"
	"glasscast/media"
)

const (
	// holdTolerance absorbs nanosecond rounding between renditions' part ends.
	holdTolerance = time.Millisecond
	// alignTolerance is how far a transcoded segment may start from the source's before the
	// rendition counts as misaligned (the same input frame gives the same instant).
	alignTolerance = 2 * time.Millisecond
	// switchSlack is how close a restarted transcoder must be to the source for a rendition to
	// switch back to it at the next segment.
	switchSlack = time.Second
	// cacheSegments source segments are kept for renditions that fall back to the source.
	cacheSegments = 6
)

// item is an init segment or a part waiting in a rendition's queue.
type item struct {
	init     *initSegment
	part     media.Part
	at       time.Time // when it was produced
	srcGen   int       // source parts: the source init generation they use
	mirrored bool      // a copy of a source part in another rendition
}

type initSegment struct {
	r media.Rendition
	b []byte
}

type cachedSegment struct {
	msn      uint64
	parts    []item
	released int // parts already published (or, for a hidden source, passed the gate)
}

// pub is one rendition's publication state.
type pub struct {
	name      string
	published bool // false for a source that only feeds the ladder (ADVANCED channels)
	held      []item
	reached   time.Time // end PDT of the newest part produced

	// transcoded: the rendition's own packager output is accepted from MSN acceptFrom on, and
	// the rendition holds the others back until it has caught up.
	transcoded  bool
	acceptFrom  uint64
	pendingInit *initSegment // the packager's newest init, published before its next part
	warming     bool         // a restarted transcoder runs; switch to it at a segment boundary
	warmFrom    uint64       // the first segment that transcoder makes

	// mirror: the source's parts are copied into the rendition (before MSN mirrorEnd, if set).
	mirror                bool
	mirrorEnd             uint64
	mirrorNext, mirrorIdx uint64
	mirrorAny             bool // never published: start with the next whole source segment
	mirrorGen             int
	haveMirrorGen         bool

	// What the origin holds.
	gen            int
	haveGen        bool
	lastInit       []byte
	started        bool
	lastMSN        uint64
	lastFromMirror bool // the newest part published was a copy of the source's
	discNext       bool // the next part 0 starts a discontinuity

	broken     bool
	misaligned bool
	loggedHold bool
}

// gate publishes a ladder. It holds each rendition's parts until every rendition still being
// transcoded has produced up to the same media time, so that playlists advance in lockstep
// (rendition reports stay current), and copies the source into renditions whose transcoder
// is down, switching back at a segment boundary once it runs again.
type gate struct {
	mu       sync.Mutex
	out      media.Output
	log      *slog.Logger
	maxHold  time.Duration
	now      func() time.Time
	src      *pub
	rends    []*pub
	srcInits map[int]initSegment
	srcGen   int
	cache    []*cachedSegment
	err      error    // publishing the source failed: the stream ends, as a BASIC one would
	switched []string // renditions that went back to their transcoder, for the event log
}

func newGate(out media.Output, log *slog.Logger, maxHold time.Duration) *gate {
	return &gate{out: out, log: log, maxHold: maxHold, now: time.Now,
		src: &pub{name: SourceName, published: true}, srcInits: map[int]initSegment{}}
}

// configure sets the ladder once planned: whether the source is itself a rendition, and the
// transcoded renditions with where a previous publisher's renditions stopped. The renditions
// hold the source back from the start: their first transcoder run is about to begin.
func (g *gate) configure(publishSource bool, names []string, prev map[string]packager.Start, baseGen int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.src.published = publishSource
	for _, n := range names {
		pb := &pub{name: n, published: true, gen: baseGen, transcoded: true}
		if st, ok := prev[n]; ok && st.Init != nil {
			pb.gen, pb.haveGen, pb.lastInit = st.Generation, true, st.Init
		}
		g.rends = append(g.rends, pb)
	}
}

func partEnd(p *media.Part) time.Time { return p.ProgramDateTime.Add(p.Duration) }

// sourceInit queues the source's init segment ahead of the parts that use it.
func (g *gate) sourceInit(ctx context.Context, r media.Rendition, b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.srcInits[r.Generation] = initSegment{r, b}
	g.srcGen = r.Generation
	g.src.held = append(g.src.held, item{init: &initSegment{r, b}})
	g.release(ctx, false)
}

// sourcePart queues a source part and keeps it for renditions that may need to copy it.
func (g *gate) sourcePart(ctx context.Context, p media.Part) {
	g.mu.Lock()
	defer g.mu.Unlock()
	it := item{part: p, at: g.now(), srcGen: g.srcGen}
	if p.Index == 0 || len(g.cache) == 0 {
		g.cache = append(g.cache, &cachedSegment{msn: p.MSN})
		if len(g.cache) > cacheSegments {
			g.cache[0] = nil
			g.cache = g.cache[1:]
		}
		g.pruneInits()
	}
	cs := g.cache[len(g.cache)-1]
	cs.parts = append(cs.parts, it)
	g.src.reached = partEnd(&p)
	g.src.held = append(g.src.held, it)
	if p.Index == 0 {
		g.switchBack(&p)
	}
	g.release(ctx, false)
}

// pruneInits forgets source init segments no cached part uses.
func (g *gate) pruneInits() {
	oldest := g.srcGen
	for _, cs := range g.cache {
		if len(cs.parts) > 0 {
			oldest = min(oldest, cs.parts[0].srcGen)
		}
	}
	for gen := range g.srcInits {
		if gen < oldest {
			delete(g.srcInits, gen)
		}
	}
}

// switchBack moves renditions whose restarted transcoder has caught up back to it, from the
// segment that starts with p.
func (g *gate) switchBack(p *media.Part) {
	for _, pb := range g.rends {
		if !pb.warming || pb.broken || p.MSN < pb.warmFrom || pb.reached.Before(p.ProgramDateTime.Add(-switchSlack)) {
			continue
		}
		pb.warming = false
		pb.transcoded, pb.acceptFrom = true, p.MSN
		pb.mirrorEnd = p.MSN
		pb.discNext = true
		g.switched = append(g.switched, pb.name)
	}
}

// transcodedInit records a rendition packager's init segment.
func (g *gate) transcodedInit(i int, r media.Rendition, b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rends[i].pendingInit = &initSegment{r, b}
}

// transcodedPart queues a rendition packager's part, or drops it while the rendition follows
// the source.
func (g *gate) transcodedPart(ctx context.Context, i int, p media.Part) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pb := g.rends[i]
	pb.reached = partEnd(&p)
	if p.Index == 0 {
		if cs := g.cached(p.MSN); cs != nil && len(cs.parts) > 0 {
			if d := p.ProgramDateTime.Sub(cs.parts[0].part.ProgramDateTime); d > alignTolerance || d < -alignTolerance {
				if !pb.misaligned {
					g.log.Warn("transcoded segment does not start with the source's", "rendition", pb.name, "msn", p.MSN, "offset", d)
				}
				pb.misaligned = true
			}
		}
	}
	if !pb.transcoded || pb.broken || p.MSN < pb.acceptFrom {
		return
	}
	if pb.pendingInit != nil {
		pb.held = append(pb.held, item{init: pb.pendingInit})
		pb.pendingInit = nil
	}
	if pb.discNext && p.Index == 0 {
		p.Discontinuity, pb.discNext = true, false
	}
	pb.held = append(pb.held, item{part: p, at: g.now()})
	g.release(ctx, false)
}

func (g *gate) cached(msn uint64) *cachedSegment {
	for _, cs := range g.cache {
		if cs.msn == msn {
			return cs
		}
	}
	return nil
}

// engage tells the gate a transcoder run has started whose segments begin at MSN from. A
// rendition that has never been published, or has always been transcoded, takes its output
// at once; one that follows the source switches back at a later segment boundary.
func (g *gate) engage(from uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, pb := range g.rends {
		switch {
		case pb.broken:
		case !pb.mirror:
			pb.transcoded, pb.acceptFrom = true, 0
		default:
			pb.warming, pb.warmFrom = true, from
		}
	}
}

// fallBack makes every rendition follow the source: their transcoder is gone. What they
// produced is published, and each continues with the source's next segment, taken from the
// cache if the source is already past it.
func (g *gate) fallBack(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fallBackLocked(ctx)
	g.release(ctx, false)
}

func (g *gate) fallBackLocked(ctx context.Context) {
	for _, pb := range g.rends {
		if pb.broken {
			continue
		}
		pb.transcoded, pb.warming, pb.pendingInit = false, false, nil
		for len(pb.held) > 0 {
			g.publish(ctx, pb, pb.held[0])
			pb.held = pb.held[1:]
		}
		switch {
		case pb.mirror && pb.mirrorEnd == 0:
			continue // already following the source
		case pb.mirror && pb.lastFromMirror:
			// Switching back had not begun: the copy goes on where it was, seamlessly.
			pb.mirrorEnd, pb.discNext = 0, false
		default:
			pb.mirror, pb.mirrorEnd, pb.discNext, pb.haveMirrorGen = true, 0, true, false
			pb.mirrorNext, pb.mirrorIdx, pb.mirrorAny = pb.lastMSN+1, 0, false
			if !pb.started {
				// Never published: start with the newest source segment already out.
				pb.mirrorAny = true
				for i := len(g.cache) - 1; i >= 0; i-- {
					if g.cache[i].released > 0 {
						pb.mirrorAny, pb.mirrorNext = false, g.cache[i].msn
						break
					}
				}
			}
			if pb.started && len(g.cache) > 0 && g.cache[0].msn > pb.mirrorNext {
				g.log.Error("rendition fell too far behind to follow the source; it stops", "rendition", pb.name,
					"next", pb.mirrorNext, "oldest", g.cache[0].msn)
				pb.broken = true
				continue
			}
		}
		for _, cs := range g.cache {
			for _, it := range cs.parts[:cs.released] {
				g.forward(ctx, pb, it)
			}
		}
	}
}

// finish publishes everything at the end of the stream and brings renditions that stopped
// short up to the source's end, so that every rendition ends on the same segment.
func (g *gate) finish(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release(ctx, true)
	g.fallBackLocked(ctx)
}

// tick releases parts held too long (a transcoder that stopped producing).
func (g *gate) tick(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release(ctx, false)
}

// release publishes every queued part that all transcoded renditions have reached, the
// source's first so that copies follow it. Called with g.mu held.
func (g *gate) release(ctx context.Context, force bool) {
	barrier := g.src.reached
	for _, pb := range g.rends {
		if pb.transcoded && !pb.broken && pb.reached.Before(barrier) {
			barrier = pb.reached
		}
	}
	now := g.now()
	for _, pb := range append([]*pub{g.src}, g.rends...) {
		for len(pb.held) > 0 {
			it := pb.held[0]
			if it.init == nil && !force && partEnd(&it.part).After(barrier.Add(holdTolerance)) {
				if now.Sub(it.at) < g.maxHold {
					break
				}
				if !pb.loggedHold {
					g.log.Warn("a rendition lags; publishing without waiting for it", "rendition", pb.name, "held", now.Sub(it.at))
					pb.loggedHold = true
				}
			}
			pb.held[0] = item{}
			pb.held = pb.held[1:]
			g.publish(ctx, pb, it)
			if pb != g.src || it.init != nil {
				continue
			}
			if cs := g.cached(it.part.MSN); cs != nil {
				cs.released = min(len(cs.parts), cs.released+1)
			}
			for _, r := range g.rends {
				if r.mirror && (r.mirrorEnd == 0 || it.part.MSN < r.mirrorEnd) {
					g.forward(ctx, r, it)
				}
			}
		}
	}
}

// forward copies a released source part into a rendition that follows the source, starting
// only at a segment's first part and never skipping one.
func (g *gate) forward(ctx context.Context, pb *pub, it item) {
	p := it.part
	if pb.broken {
		return
	}
	if pb.mirrorAny {
		if p.Index != 0 {
			return
		}
		pb.mirrorAny, pb.mirrorNext, pb.mirrorIdx = false, p.MSN, 0
	}
	if p.MSN != pb.mirrorNext || uint64(p.Index) != pb.mirrorIdx {
		return
	}
	if !pb.haveMirrorGen || pb.mirrorGen != it.srcGen {
		src, ok := g.srcInits[it.srcGen]
		if !ok {
			return
		}
		r := src.r
		r.Name = pb.name
		g.publish(ctx, pb, item{init: &initSegment{r, src.b}})
		pb.mirrorGen, pb.haveMirrorGen = it.srcGen, true
	}
	if pb.discNext && p.Index == 0 {
		p.Discontinuity, pb.discNext = true, false
	}
	g.publish(ctx, pb, item{part: p, mirrored: true})
	if p.Last {
		pb.mirrorNext, pb.mirrorIdx = p.MSN+1, 0
	} else {
		pb.mirrorIdx++
	}
}

// publish hands an init or a part to the sink. A transcoded rendition's init generations are
// numbered here, whichever packager or copy made them, so they only ever increase.
func (g *gate) publish(ctx context.Context, pb *pub, it item) {
	if !pb.published || pb.broken || g.err != nil && pb == g.src {
		return
	}
	var err error
	if it.init != nil {
		r := it.init.r
		if pb != g.src {
			r.Name = pb.name
			if pb.haveGen && !bytes.Equal(pb.lastInit, it.init.b) {
				pb.gen++
			}
			pb.haveGen, pb.lastInit = true, it.init.b
			r.Generation = pb.gen
		}
		err = g.out.Init(ctx, r, it.init.b)
	} else {
		err = g.out.Part(ctx, pb.name, it.part)
		if err == nil {
			pb.started, pb.lastMSN, pb.lastFromMirror = true, it.part.MSN, it.mirrored
			if !it.mirrored && pb != g.src {
				pb.mirror, pb.mirrorEnd = false, 0 // the switch back is done
			}
		}
	}
	if err == nil {
		return
	}
	if pb == g.src {
		g.err = err
		return
	}
	g.log.Error("rendition cannot be published; it stops", "rendition", pb.name, "err", err)
	pb.broken = true
}

// publishErr is the source's publication failure, if any.
func (g *gate) publishErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// takeSwitched returns the renditions that went back to their transcoder since the last call.
func (g *gate) takeSwitched() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.switched
	g.switched = nil
	return s
}

// misaligned reports whether a transcoded rendition's segments stopped matching the source's.
func (g *gate) misaligned() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, pb := range g.rends {
		if pb.misaligned && !pb.broken {
			pb.misaligned = false
			return pb.name
		}
	}
	return ""
}

// renditionState is what a successor gate needs to continue a rendition's init generations.
func (g *gate) renditionState(i int) (gen int, init []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pb := g.rends[i]
	return pb.gen, pb.lastInit
}
