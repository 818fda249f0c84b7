package bench

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// gunzipper decompresses response bodies, its readers pooled across viewers (a reader holds a
// 32 KB window: one per viewer would be tens of MB at a thousand viewers).
//
// It reads through a bytes.Reader, which klauspost's inflater decodes on its fast path;
// fasthttp's AppendGunzipBytes wraps the body in its own reader, which takes the generic
// byte-at-a-time path and cost the load client about a sixth of its CPU, on the cores of
// the server it measures.
type gunzipper struct{ pool sync.Pool }

type gunzipReader struct {
	src bytes.Reader
	zr  *gzip.Reader
}

// appendGunzip appends the decompressed body to dst.
func (g *gunzipper) appendGunzip(dst, body []byte) ([]byte, error) {
	r, _ := g.pool.Get().(*gunzipReader)
	if r == nil {
		r = &gunzipReader{}
	}
	defer g.pool.Put(r)
	r.src.Reset(body)
	if r.zr == nil {
		zr, err := gzip.NewReader(&r.src)
		if err != nil {
			return dst, err
		}
		r.zr = zr
	} else if err := r.zr.Reset(&r.src); err != nil {
		return dst, err
	}
	out := bytes.NewBuffer(dst)
	_, err := r.zr.WriteTo(out)
	return out.Bytes(), err
}
