package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"glasscast/bus"
)

// A data folder written before stream keys were indexed by digest keeps working: Open rewrites
// plain keys into digests and leaves no subject that names a value.
func TestStreamKeyValuesMigrateToDigests(t *testing.T) {
	dir := t.TempDir()
	b := openBus(t, dir)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "glasscast_stream_key_values", History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	const value = "sk_us-east-1_PlainValueOfAnOldKey"
	if _, err := old.Put(ctx, value, []byte(`"key1"`)); err != nil {
		t.Fatal(err)
	}
	stCtx, stop := context.WithCancel(ctx)
	defer stop()
	st, err := Open(stCtx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	d := st.StreamKeyDigest(value)
	if !strings.HasPrefix(d, "h_") || strings.Contains(d, value) || len(d) != 2+64 {
		t.Fatalf("digest %q", d)
	}
	if id, ok := st.StreamKeyValues.Get(d); !ok || id != "key1" {
		t.Fatalf("migrated lookup: %q %v", id, ok)
	}
	if _, ok := st.StreamKeyValues.Get(value); ok {
		t.Fatal("plain key still in the table")
	}
	s, err := b.JS.Stream(ctx, "KV_glasscast_stream_key_values")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		if strings.Contains(subj, value) {
			t.Fatalf("subject %s still names the value", subj)
		}
	}

	// A second process (or a restart) shares the digest secret and finds the same key.
	st2, err := Open(stCtx, b.JS, bus.Replication{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.StreamKeyDigest(value) != d {
		t.Fatal("digest differs between processes")
	}
}
