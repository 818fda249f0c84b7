package metadata

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"testing"
)

// The splice_insert example of ANSI/SCTE 35 (section 14.2, "Splice Insert"), as published.
const scte35Example = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo="

func TestSpliceInsertPublishedExample(t *testing.T) {
	want, err := base64.StdEncoding.DecodeString(scte35Example)
	if err != nil {
		t.Fatal(err)
	}
	pts, dur, avail := uint64(0x07369c02e), uint64(0x0052ccf5), uint32(0x135)
	s := SpliceInsert{EventID: 0x4800008f, OutOfNetwork: true, PTS: &pts, BreakDuration: &dur, AvailID: &avail}
	if got := s.Encode(); !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n got %x\nwant %x", got, want)
	}
	back, err := ParseSpliceInsert(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("Parse = %+v, want %+v", back, s)
	}
	// An end-of-break command without time or descriptors round-trips too.
	in := SpliceInsert{EventID: 7}
	if back, err := ParseSpliceInsert(in.Encode()); err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip of %+v: %+v, %v", in, back, err)
	}
	bad := append([]byte(nil), want...)
	bad[20] ^= 1
	if _, err := ParseSpliceInsert(bad); err == nil {
		t.Fatal("a corrupted section parsed")
	}
}
