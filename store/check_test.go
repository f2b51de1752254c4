package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// filledStore writes a store of several pages and returns its path and the tasks it holds. Its last
// transaction rewrites a record with identical content, so that the state under either meta page is
// the same (bbolt falls back to the older meta when the newer one is damaged, by design).
func filledStore(t *testing.T) (string, []*Task) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "evidenced.db")
	s := open(t, path)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 40 {
		tk := &Task{Key: fmt.Sprintf("EVD-%03d", i), Kind: "image", State: "completed", Created: created.Add(time.Duration(i) * time.Second),
			Log: []string{strings.Repeat(fmt.Sprintf("line %d ", i), 60)}, Hashes: map[string]string{"MD5": fmt.Sprintf("%032x", i)}}
		if err := s.PutTask(tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutUser(&User{Name: "examiner"}); err != nil {
		t.Fatal(err)
	}
	tasks, err := s.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutTask(tasks[len(tasks)-1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, tasks
}

// openDamaged opens a copy of a damaged file and requires a DamagedError naming it (or, when bbolt
// can repair from its second meta page or the page is free, the full original content), and the file
// left byte for byte as it was.
func openDamaged(t *testing.T, path string, want []*Task, mustRefuse bool) (refused bool) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		got, terr := s.Tasks()
		s.Close()
		if terr != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("damaged store opened with different content (err %v): %d tasks instead of %d", terr, len(got), len(want))
		}
		if mustRefuse {
			t.Fatal("damaged store opened")
		}
		return false
	}
	var de *DamagedError
	if !errors.As(err, &de) || de.Path != path {
		t.Fatalf("error is not a DamagedError naming %s: %v", path, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "restore a backup") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("error is not one sentence naming the file and what to do: %q", msg)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the damaged file was changed")
	}
	if _, err := os.Stat(path + ".new"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a new store was created beside the damaged one")
	}
	return true
}

func copyWith(t *testing.T, src string, change func([]byte) []byte) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "evidenced.db")
	if err := os.WriteFile(dst, change(bytes.Clone(data)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestOpenRefusesTruncated(t *testing.T) {
	path, want := filledStore(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 8*4096 {
		t.Fatalf("test store is only %d bytes; it should span many pages", fi.Size())
	}
	for _, size := range []int64{0, 100, 4096, fi.Size() / 2} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := copyWith(t, path, func(b []byte) []byte { return b[:size] })
			openDamaged(t, p, want, true)
			if err := Check(p); err == nil {
				t.Fatal("Check passed a truncated file")
			}
		})
	}
}

// TestOpenGarbagePage overwrites each 4 KiB page in turn, with random bytes and with random bytes
// under a plausible branch or leaf header (which sends bbolt to arbitrary page numbers): never a
// crash, never a silent loss.
func TestOpenGarbagePage(t *testing.T) {
	path, want := filledStore(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := len(data) / 4096
	refused := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for p := range pages {
		for _, flags := range []uint16{0, 0x01, 0x02} {
			t.Run(fmt.Sprintf("page%d/flags%d", p, flags), func(t *testing.T) {
				dst := copyWith(t, path, func(b []byte) []byte {
					pg := b[p*4096 : (p+1)*4096]
					for i := range pg {
						pg[i] = byte(rng.Uint32())
					}
					if flags != 0 {
						binary.LittleEndian.PutUint64(pg[0:], uint64(p))
						binary.LittleEndian.PutUint16(pg[8:], flags)
					}
					return b
				})
				if openDamaged(t, dst, want, false) {
					refused++
				}
			})
		}
	}
	t.Logf("%d of %d damaged copies refused", refused, 3*pages)
	if refused < pages {
		t.Fatalf("only %d of %d damaged copies were refused", refused, 3*pages)
	}
}

func TestOpenCreatesOnlyWhenMissing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "evidenced.db")
	if err := Check(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Check of a missing file: %v, want ErrNotExist", err)
	}
	s := open(t, path)
	if err := s.PutUser(&User{Name: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("live check of a good store: %v", err)
	}
	s.Close()
	if err := Check(path); err != nil {
		t.Fatalf("Check of a good store: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d entries, want only evidenced.db", len(entries))
	}
}

func TestCheckWhileOpenIsInUse(t *testing.T) {
	path, _ := filledStore(t)
	s := open(t, path)
	defer s.Close()
	if err := Check(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("Check while the store is open: %v, want ErrInUse", err)
	}
}

func TestBackup(t *testing.T) {
	path, want := filledStore(t)
	dir := t.TempDir()

	// Offline: the checked copy opens with the same content.
	off := filepath.Join(dir, "offline.db")
	if err := BackupFile(path, off); err != nil {
		t.Fatal(err)
	}
	// Live: a snapshot taken while a writer is busy.
	s := open(t, path)
	done := make(chan error)
	go func() {
		for i := range 50 {
			if err := s.PutSetting(fmt.Sprintf("k%d", i), i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	live := filepath.Join(dir, "live.db")
	if err := WriteBackup(live, func(w io.Writer) error { _, err := s.Backup(w); return err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := BackupFile(path, filepath.Join(dir, "x.db")); !errors.Is(err, ErrInUse) {
		t.Fatalf("offline backup while open: %v, want ErrInUse", err)
	}
	s.Close()
	for _, p := range []string{off, live} {
		b := open(t, p)
		got, err := b.Tasks()
		b.Close()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %d tasks (err %v), want the %d saved", p, len(got), err, len(want))
		}
	}
	// A damaged file is not backed up, and the destination is not created.
	bad := copyWith(t, path, func(b []byte) []byte { return b[:len(b)/2] })
	dst := filepath.Join(dir, "bad.db")
	var de *DamagedError
	if err := BackupFile(bad, dst); !errors.As(err, &de) {
		t.Fatalf("backup of a damaged file: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("backup of a damaged file created its destination")
	}
}
