package archive

import (
	"os"
	"testing"
	"time"

	"glasscast/archive/layout"
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
			j, err := openJournal(dir)
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
			j, err = openJournal(dir) // the resumed run
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
