package edge

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"sync/atomic"
)

// rendered is a playlist with the query all its viewers share written in, kept on the cache
// object so that the waiters of a blocking reload, released together when a part completes,
// do not each rewrite and compress the same bytes one after another. Only the rendition
// reports carry a viewer's own query (hls.js matches them with the multivariant's URIs, which
// name the viewer session); they close the playlist, so a viewer's answer is the shared head
// and its own short tail. The gzip answer is the head compressed once and ended with a sync
// flush (byte-aligned, not final), then the tail as the stream's final (stored) block, with the CRC
// continued from the head's: a valid gzip member that costs a viewer only its tail.
type rendered struct {
	query   string // the shared child query
	head    []byte // the playlist up to its first rendition report, query written in
	tail    []byte // the rest, as the upstream sent it: each viewer's query goes in there
	gzHead  []byte // gzip header and the head's deflate blocks, sync-flushed
	headCRC uint32
}

// renderCache holds an object's rendered playlist for its one shared query.
type renderCache struct {
	mu sync.Mutex // held while rendering, so that it is done once
	// r is read without the lock: all the waiters of a blocking reload come for it in the
	// same instant, and through one mutex they queued (in its starvation mode the lock is
	// handed from goroutine to goroutine, a scheduler wake-up each, slow on busy cores).
	r atomic.Pointer[rendered]
}

// get returns the playlist body rendered for query, building it once per object.
func (c *renderCache) get(body []byte, query string, gz *gzipper) (*rendered, error) {
	if r := c.r.Load(); r != nil && r.query == query {
		return r, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.r.Load(); r != nil && r.query == query {
		return r, nil
	}
	cut := len(body)
	if i := bytes.Index(body, []byte("\n#EXT-X-RENDITION-REPORT:")); i >= 0 {
		cut = i + 1
	}
	r := &rendered{query: query, tail: body[cut:]}
	r.head = appendQuery(body[:cut], query, "")
	var err error
	if r.gzHead, err = gz.compressOpen(r.head); err != nil {
		return nil, err
	}
	r.headCRC = crc32.ChecksumIEEE(r.head)
	c.r.Store(r)
	return r, nil
}

// body is the viewer's playlist: the head and the tail with reportQ in its rendition reports.
func (r *rendered) body(reportQ string) []byte {
	tail := appendQuery(r.tail, r.query, reportQ)
	out := make([]byte, 0, len(r.head)+len(tail))
	return append(append(out, r.head...), tail...)
}

// gzip is body(reportQ), gzip-compressed.
func (r *rendered) gzip(gz *gzipper, reportQ string) ([]byte, error) {
	tail := appendQuery(r.tail, r.query, reportQ)
	buf := bytes.NewBuffer(make([]byte, 0, len(r.gzHead)+len(tail)+32))
	buf.Write(r.gzHead)
	// Stored, not compressed: a few hundred bytes, where a Huffman table would cost more time
	// than it saves bytes.
	if err := gz.store(buf, tail); err != nil {
		return nil, err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc32.Update(r.headCRC, crc32.IEEETable, tail))
	binary.LittleEndian.PutUint32(trailer[4:], uint32(len(r.head)+len(tail)))
	buf.Write(trailer[:])
	return buf.Bytes(), nil
}
