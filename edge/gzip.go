package edge

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// gzipper compresses playlists for viewers that accept gzip, reusing writers.
type gzipper struct{ pool, stored sync.Pool }

func (g *gzipper) compress(b []byte) ([]byte, error) {
	return g.write(b, (*gzip.Writer).Close)
}

// compressOpen returns a gzip member's header and b's deflate blocks ended with a sync flush:
// more blocks and the trailer may follow (see rendered).
func (g *gzipper) compressOpen(b []byte) ([]byte, error) {
	return g.write(b, (*gzip.Writer).Flush)
}

func (g *gzipper) write(b []byte, end func(*gzip.Writer) error) ([]byte, error) {
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
	if err := end(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// store writes b to buf as a final deflate block, uncompressed.
func (g *gzipper) store(buf *bytes.Buffer, b []byte) error {
	w, _ := g.stored.Get().(*flate.Writer)
	if w == nil {
		w, _ = flate.NewWriter(buf, flate.NoCompression)
	} else {
		w.Reset(buf)
	}
	defer g.stored.Put(w)
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Close()
}
