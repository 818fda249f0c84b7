package push

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"glasscast/media"
)

func seedFrames(f *testing.F) {
	s := media.Stream{ChannelID: "c", StreamID: "s", LowLatency: true, TargetDuration: time.Second, PartTarget: 200 * time.Millisecond}
	for _, m := range []*meta{
		{Stream: s},
		{Stream: s, Rendition: &media.Rendition{Name: "720p", Codecs: "avc1.64001f", Width: 1280, Height: 720}},
		{Stream: s, Name: "720p", Part: &media.Part{MSN: 3, Index: 1, Duration: time.Second / 5, Cues: []media.Cue{{ID: "a", Text: "hi"}}}},
	} {
		h, err := encodeHeader(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(h, "payload"...))
	}
	f.Add([]byte("GCP1\xff\xff\xff\xff{}"))
	f.Add([]byte("GCP1\x00\x00\x00\x02{}"))
	f.Add([]byte{})
}

// FuzzDecodeFrame: no input panics the decoder, and what it accepts survives re-encoding.
func FuzzDecodeFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, op := range []string{opOpen, opInit, opPart, opClose, "x"} {
			m, payload, err := decodeFrame(op, b)
			if err != nil {
				continue
			}
			h, err := encodeHeader(m)
			if err != nil {
				t.Fatalf("re-encoding an accepted frame: %v", err)
			}
			m2, p2, err := decodeFrame(op, append(h, payload...))
			if err != nil || !reflect.DeepEqual(m, m2) || !bytes.Equal(payload, p2) {
				t.Fatalf("round trip: %v\n%+v\n%+v", err, m, m2)
			}
		}
	})
}

// nullSink accepts everything.
type nullSink struct{}

func (nullSink) Open(context.Context, media.Stream) (media.Broadcast, error) { return nullSink{}, nil }
func (nullSink) Init(context.Context, media.Rendition, []byte) error         { return nil }
func (nullSink) Part(context.Context, string, media.Part) error              { return nil }
func (nullSink) Close(context.Context) error                                 { return nil }

// FuzzHandler: any body on any operation gets an HTTP answer, never a panic.
func FuzzHandler(f *testing.F) {
	seedFrames(f)
	h := NewHandler(nullSink{}, HandlerConfig{Token: "t", MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, op := range []string{opOpen, opInit, opPart, opClose} {
			req := httptest.NewRequest(http.MethodPost, "/_push/"+op, bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer t")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			switch w.Code {
			case http.StatusNoContent, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("%s: status %d: %s", op, w.Code, w.Body)
			}
		}
	})
}

// FuzzSplitBatch: no batch body panics the splitter, and every frame it returns lies inside
// the body and names an operation a batch may carry.
func FuzzSplitBatch(f *testing.F) {
	s := media.Stream{ChannelID: "c", StreamID: "s", TargetDuration: time.Second}
	h, err := encodeHeader(&meta{Stream: s, Name: "r", Part: &media.Part{Duration: time.Second}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendBatchFrame(appendBatchFrame(nil, opPart, h, []byte("data")), opPart, h, nil))
	f.Add([]byte{4, 'p', 'a', 'r', 't', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, frames, err := splitBatch(b)
		if err != nil {
			return
		}
		total := 0
		for i, fr := range frames {
			if ops[i] != opInit && ops[i] != opPart {
				t.Fatalf("op %q", ops[i])
			}
			total += len(fr)
			_, _, _ = decodeFrame(ops[i], fr)
		}
		if total > len(b) {
			t.Fatalf("frames of %d bytes from %d", total, len(b))
		}
	})
}
