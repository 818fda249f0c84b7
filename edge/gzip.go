package edge

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// gzipper compresses playlists for viewers that accept gzip, reusing writers.
type gzipper struct{ pool sync.Pool }

func (g *gzipper) compress(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := g.pool.Get().(*gzip.Writer)
	if w == nil {
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	} else {
		w.Reset(&buf)
	}
	defer g.pool.Put(w)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
