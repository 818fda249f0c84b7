package bucket

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"my-stream-recordings-123456789012": true, "a.b-c": true, "abc": true,
		"ab": false, "...": false, "a..b": false, "-abc": false, "abc.": false, "Abc": false, "a_b": false,
		"a/b": false, string(bytes.Repeat([]byte("a"), 64)): false,
	} {
		if ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
	}
}

// TestLocalFolder writes through the folder store and refuses keys that would leave it.
func TestLocalFolder(t *testing.T) {
	root := t.TempDir()
	s, err := New(Config{LocalDir: root})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Local("recs") {
		t.Fatal("no endpoint should mean the local folder")
	}
	b, err := s.Open("recs")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "ivs/v1/x/media/hls/0.ts", bytes.NewReader([]byte("data")), 4); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "recs", "ivs/v1/x/media/hls/0.ts"))
	if err != nil || string(got) != "data" {
		t.Fatalf("%q %v", got, err)
	}
	for _, key := range []string{"../escape", "a/../../escape", "/abs", "a//b", "a\\b", ""} {
		if err := b.Put(t.Context(), key, bytes.NewReader(nil), 0); err == nil || !IsPermanent(err) {
			t.Errorf("key %q: %v", key, err)
		}
	}
	if _, err := s.Open("..."); err == nil || !IsPermanent(err) {
		t.Errorf("bucket ... opened: %v", err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{Endpoint: "ftp://x"}); err == nil {
		t.Error("ftp endpoint accepted")
	}
	if _, err := New(Config{Buckets: map[string]string{"b": "not a url"}}); err == nil {
		t.Error("bad bucket endpoint accepted")
	}
	s, err := New(Config{Endpoint: "http://127.0.0.1:1", Buckets: map[string]string{"other": EndpointAWS}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Local("recs") || s.Local("other") {
		t.Error("S3 buckets treated as local")
	}
	b, _ := s.Open("recs")
	if err := b.Check(t.Context()); err == nil || IsPermanent(err) {
		t.Errorf("unreachable server: %v (must be a transient error)", err)
	}
	if !IsPermanent(Permanent(errors.New("x"))) || IsPermanent(errors.New("x")) {
		t.Error("IsPermanent")
	}
	if ContentType("a/b.m3u8") != "application/x-mpegURL" || ContentType("0.ts") != "video/MP2T" || ContentType("t.jpg") != "image/jpeg" {
		t.Error("content types")
	}
}
