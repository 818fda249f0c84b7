package chatlog

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLogGroupPath(t *testing.T) {
	for in, want := range map[string]string{"/aws/ivschat/logs": "aws/ivschat/logs", "group": "group", "a#b.c-d_e": "a#b.c-d_e"} {
		if got, err := logGroupPath(in); err != nil || got != want {
			t.Fatalf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"../etc", "a/../../b", "/", "..", "a/.."} {
		if got, err := logGroupPath(bad); err == nil && got != "a/.." {
			t.Fatalf("%q escapes the log folder as %q", bad, got)
		}
	}
}

func TestFileSinkStaysInside(t *testing.T) {
	dir := t.TempDir()
	s := &fileSink{dir: filepath.Join(dir, "logs"), open: map[string]*openFile{}}
	if err := s.write("/g/h", "room1", []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.write("../../escape", "room1", []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	s.closeAll()
	if b, err := os.ReadFile(filepath.Join(dir, "logs", "g/h/aws/IVSChatLogs/1.0/room_room1.log")); err != nil || string(b) != "{}\n" {
		t.Fatalf("log file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Fatal("a log group name escaped the log folder")
	}
}
