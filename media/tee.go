package media

import (
	"context"
	"errors"
	"fmt"
)

// Tee is a Sink that writes every broadcast to several sinks: an ingest feeding two origins, so
// that an edge can fail over between them. Objects go to each sink in turn; a sink that fails
// is dropped from the broadcast (the others keep it alive) and the write fails only when no
// sink is left.
type Tee []Sink

// Open opens the broadcast on every sink that accepts it.
func (t Tee) Open(ctx context.Context, s Stream) (Broadcast, error) {
	var out teeBroadcast
	var errs []error
	for _, sink := range t {
		b, err := sink.Open(ctx, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sink accepted the broadcast: %w", errors.Join(errs...))
	}
	return &out, nil
}

type teeBroadcast []Broadcast

func (t *teeBroadcast) each(fn func(Broadcast) error) error {
	var errs []error
	kept := (*t)[:0]
	for _, b := range *t {
		if err := fn(b); err != nil {
			errs = append(errs, err)
			continue
		}
		kept = append(kept, b)
	}
	*t = kept
	if len(kept) == 0 {
		return fmt.Errorf("every sink failed: %w", errors.Join(errs...))
	}
	return nil
}

func (t *teeBroadcast) Init(ctx context.Context, r Rendition, init []byte) error {
	return t.each(func(b Broadcast) error { return b.Init(ctx, r, init) })
}

func (t *teeBroadcast) Part(ctx context.Context, rendition string, p Part) error {
	return t.each(func(b Broadcast) error { return b.Part(ctx, rendition, p) })
}

func (t *teeBroadcast) Close(ctx context.Context) error {
	var errs []error
	for _, b := range *t {
		if err := b.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
