package archive

import (
	"os"
	"testing"
	"time"

	"glasscast/archive/layout"
	"glasscast/archive/spool"
)

// A kill mid-write leaves a torn last line. The resumed recording appends to the journal, and
// what it appends must survive the next replay: readJournal stops at the first line it cannot
// read, so the torn tail is cut off before appending. A last entry that lacks only its newline
// was read, so it is kept and ended.
func TestJournalResumesAfterATornWrite(t *testing.T) {
	for name, tail := range map[string]string{
		"torn entry":         `{"k":"chunks","r":"720p30","n":0,"chu`,
		"entry sans newline": `{"k":"thumb","n":3}`,
		"zeros":              "\x00\x00\x00\x00",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			j, err := openJournal(dir, func(int64) {})
			if err != nil {
				t.Fatal(err)
			}
			m := meta{ID: "rec1", Bucket: "bkt", Prefix: "p", StartedAt: time.Now()}
			if err := j.add(entry{Kind: kindStart, Meta: &m}, entry{Kind: kindRendition, Rendition: &layout.Rendition{Name: "720p30"}}); err != nil {
				t.Fatal(err)
			}
			j.close()
			f, err := os.OpenFile(journalPath(dir), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString(tail)
			f.Close()
			before, err := readJournal(dir)
			if err != nil || before.meta == nil || len(before.renditions) != 1 {
				t.Fatalf("replay before resuming: %+v, %v", before, err)
			}
			j, err = openJournal(dir, func(int64) {}) // the resumed run
			if err != nil {
				t.Fatal(err)
			}
			if err := j.add(entry{Kind: kindFinal, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			j.close()
			after, err := readJournal(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !after.final || after.meta == nil || len(after.renditions) != 1 {
				t.Fatalf("after resuming: final %v, meta %v, %d renditions", after.final, after.meta != nil, len(after.renditions))
			}
			if after.thumbN != before.thumbN {
				t.Fatalf("thumbnail count %d before resuming, %d after", before.thumbN, after.thumbN)
			}
		})
	}
}

// The journal's bytes count against the spool's bound like the media's: once the recording's
// folder is removed, the spool holds what it held before, not less. A journal written
// unaccounted drove the count below what the disk held, and the bound up with it, by each
// finished recording's journal for as long as the process ran.
func TestJournalCountsInTheSpool(t *testing.T) {
	sp, err := spool.New(spool.Config{Dir: t.TempDir(), MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		q, err := sp.Open("rec1")
		if err != nil {
			t.Fatal(err)
		}
		j, err := openJournal(q.Dir(), q.Grew)
		if err != nil {
			t.Fatal(err)
		}
		m := meta{ID: "rec1", Bucket: "bkt", Prefix: "p", StartedAt: time.Now()}
		for range 50 {
			if err := j.add(entry{Kind: kindStart, Meta: &m}); err != nil {
				t.Fatal(err)
			}
		}
		j.close()
		fi, err := os.Stat(journalPath(q.Dir()))
		if err != nil {
			t.Fatal(err)
		}
		if sp.Used() != fi.Size() {
			t.Fatalf("round %d: the spool counts %d bytes, its journal holds %d", round, sp.Used(), fi.Size())
		}
		if err := q.Remove(); err != nil {
			t.Fatal(err)
		}
		if sp.Used() != 0 {
			t.Fatalf("round %d: the spool counts %d bytes with nothing on disk", round, sp.Used())
		}
	}
}
