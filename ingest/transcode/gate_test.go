package transcode

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"glasscast/media"
)

// gateRig drives a gate with synthetic parts: segments of two 1 s parts, one source rendition
// and one transcoded one, on a fake clock.
type gateRig struct {
	t    *testing.T
	g    *gate
	sink *recSink
	now  time.Time
	t0   time.Time
}

func newGateRig(t *testing.T) *gateRig {
	r := &gateRig{t: t, sink: newRecSink(), t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.now = r.t0
	r.g = newGate(r.sink, slog.New(slog.NewTextHandler(testWriter{t}, nil)), 6*time.Second)
	r.g.now = func() time.Time { return r.now }
	r.g.configure(true, []string{"480p30"}, nil, 100)
	r.g.sourceInit(testCtx, media.Rendition{Name: SourceName, Width: 1280, Generation: 100}, []byte("source-init"))
	return r
}

func (r *gateRig) part(msn uint64, idx int, tag string) media.Part {
	return media.Part{MSN: msn, Index: idx, Duration: time.Second, Last: idx == 1, Independent: idx == 0,
		ProgramDateTime: r.t0.Add(time.Duration(2*int(msn)+idx) * time.Second), Data: []byte(fmt.Sprintf("%s%d.%d", tag, msn, idx))}
}

func (r *gateRig) source(msn uint64, idx int) { r.g.sourcePart(testCtx, r.part(msn, idx, "S")) }
func (r *gateRig) rendition(msn uint64, idx int) {
	r.g.transcodedPart(testCtx, 0, r.part(msn, idx, "T"))
}

// published renders what the origin got for the rendition: "T1.0 T1.1 | S3.0 ..." with "|"
// before a discontinuity and "[w]" at each init (its width).
func (r *gateRig) published() string {
	var sb []string
	inits := r.sink.inits["480p30"]
	for i, rp := range r.sink.parts["480p30"] {
		for _, in := range inits {
			if in.atParts == i {
				sb = append(sb, fmt.Sprintf("[%d/%d]", in.r.Width, in.r.Generation))
			}
		}
		if rp.p.Discontinuity {
			sb = append(sb, "|")
		}
		sb = append(sb, string(rp.p.Data))
	}
	return strings.Join(sb, " ")
}

// TestGateLockstepAndFallBack walks a rendition through its life: published in lockstep with
// the source, its transcoder failing mid-segment (the rest of the segment is cut short and the
// source is copied from the next one), a restarted transcoder taking over at a segment
// boundary, failing again before it published anything (the copy goes on), a change of the
// source's init while copied, and the end of the stream.
func TestGateLockstepAndFallBack(t *testing.T) {
	r := newGateRig(t)
	r.g.transcodedInit(0, media.Rendition{Name: "480p30", Width: 854}, []byte("t-init-1"))
	r.source(1, 0)
	if got := len(r.sink.parts[SourceName]); got != 0 {
		t.Fatalf("the source published %d parts before the rendition caught up", got)
	}
	r.rendition(1, 0)
	r.source(1, 1)
	r.rendition(1, 1)
	r.source(2, 0)
	r.rendition(2, 0)
	if got := len(r.sink.parts[SourceName]); got != 3 {
		t.Fatalf("source parts published in lockstep: %d, want 3", got)
	}
	// The transcoder dies; the rendition's packager flushed 2.0 as its last part.
	r.source(2, 1)
	r.g.fallBack(testCtx)
	r.source(3, 0)
	r.source(3, 1)
	// A new transcoder starts on segment 4; it has caught up when segment 5 starts.
	r.g.engage(4)
	r.g.transcodedInit(0, media.Rendition{Name: "480p30", Width: 854}, []byte("t-init-2"))
	// The publisher changes resolution at segment 4: the copy follows with a new init.
	r.g.sourceInit(testCtx, media.Rendition{Name: SourceName, Width: 1920, Generation: 101}, []byte("source-init-2"))
	r.source(4, 0)
	r.rendition(4, 0)
	r.source(4, 1)
	r.rendition(4, 1)
	r.source(5, 0)
	r.rendition(5, 0)
	r.source(5, 1)
	r.rendition(5, 1)
	if got := r.g.takeSwitched(); len(got) != 1 {
		t.Fatalf("switched: %v", got)
	}
	// The transcoder fails again as segment 6 starts; the next run starts on segment 7 and has
	// caught up by segment 8, but fails before its first part there is published.
	r.source(6, 0)
	r.g.fallBack(testCtx)
	r.g.engage(7)
	r.source(6, 1)
	r.source(7, 0)
	r.rendition(7, 0)
	r.source(7, 1)
	r.source(8, 0)
	r.g.fallBack(testCtx)
	r.source(8, 1)
	r.g.finish(testCtx)
	if got := r.g.takeSwitched(); len(got) != 1 {
		t.Fatalf("switched: %v", got)
	}

	want := "[854/100] T1.0 T1.1 T2.0 [1280/101] | S3.0 S3.1 [1920/102] S4.0 S4.1 [854/103] | T5.0 T5.1 [1920/104] | S6.0 S6.1 S7.0 S7.1 S8.0 S8.1"
	if got := r.published(); got != want {
		t.Errorf("published\n got %s\nwant %s", got, want)
	}
	r.sink.segments(t, SourceName)
	r.sink.segments(t, "480p30")
}

// TestGateHoldLimit: a rendition that stops producing holds the others back for the hold
// limit only.
func TestGateHoldLimit(t *testing.T) {
	r := newGateRig(t)
	r.g.transcodedInit(0, media.Rendition{Name: "480p30", Width: 854}, []byte("t-init"))
	r.source(1, 0)
	r.now = r.now.Add(5 * time.Second)
	r.g.tick(testCtx)
	if len(r.sink.parts[SourceName]) != 0 {
		t.Fatal("released before the hold limit")
	}
	r.now = r.now.Add(2 * time.Second)
	r.g.tick(testCtx)
	if len(r.sink.parts[SourceName]) != 1 {
		t.Fatal("still held after the hold limit")
	}
}
