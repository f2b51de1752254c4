package tasks

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidenced/evidenced/imaging/target"
)

// shortTarget is a local target whose files take limit bytes and then fail, as on a full share.
type shortTarget struct {
	target.Target
	limit int
}

type shortFile struct {
	target.File
	left int
}

var errFull = errors.New("no space left on the share")

func (t shortTarget) Create(name string) (target.File, error) {
	f, err := t.Target.Create(name)
	if err != nil {
		return nil, err
	}
	return &shortFile{File: f, left: t.limit}, nil
}

func (f *shortFile) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n, _ := f.File.Write(p[:f.left])
		f.left = 0
		return n, errFull
	}
	f.left -= len(p)
	return f.File.Write(p)
}

// TestWriteReportFile writes a report file larger than its buffer through to the target, and
// removes one the target could not take whole, or whose renderer failed part way, rather than leave
// a truncated file that reads as the whole report.
func TestWriteReportFile(t *testing.T) {
	dir := t.TempDir()
	local, err := target.OpenLocal(dir, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: several buffer flushes
	render := func(w io.Writer) error {
		for p := big; len(p) > 0; p = p[1000:] {
			if _, err := w.Write(p[:1000]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := writeReportFile(local, "Report.json", render); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "Report.json")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("written file: %d bytes of %d, %v", len(got), len(big), err)
	}
	// Written again: the older file is replaced, not appended to or refused.
	if err := writeReportFile(local, "Report.json", func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "Report.json")); string(got) != "new" {
		t.Fatalf("rewritten file holds %d bytes", len(got))
	}

	full := shortTarget{Target: local, limit: 3 << 20}
	if err := writeReportFile(full, "Files.csv", render); !errors.Is(err, errFull) {
		t.Fatalf("full share: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Files.csv")); !os.IsNotExist(err) {
		t.Fatalf("a truncated Files.csv was left: %v", err)
	}
	broken := errors.New("renderer failed")
	if err := writeReportFile(local, "Report.pdf", func(w io.Writer) error { w.Write(big); return broken }); !errors.Is(err, broken) {
		t.Fatalf("failed renderer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Report.pdf")); !os.IsNotExist(err) {
		t.Fatalf("a half-rendered Report.pdf was left: %v", err)
	}
}
