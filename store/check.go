package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DamagedError says the state file cannot be trusted. The daemon refuses to start over it and never
// writes to it: the examiner restores a backup or moves the file aside, knowingly.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("state file %s is damaged (%s) and was left as it is: restore a backup over it "+
		"(made with `evidenced store backup`) or move it aside to start with an empty store", e.Path, e.Reason)
}

// ErrInUse is returned by Check and BackupFile when another process (the daemon) holds the file.
var ErrInUse = errors.New("state file is in use by another process")

// lockWait is how long an offline check waits for the daemon's exclusive lock before giving up.
const lockWait = 500 * time.Millisecond

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common: page header then meta). bbolt maps the
// file without comparing its size to the high-water mark the meta records, and a page read past the
// end of a truncated file is a SIGBUS that no recover catches; so the size is checked here first.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	pageHeaderSize  = 16
	metaChecksumOff = pageHeaderSize + 56
	metaSize        = metaChecksumOff + 8
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // high-water mark: pages [0, pgid) are in use
	txid     uint64
}

// readMeta decodes the meta page at off; ok is false when it is not a valid one.
func readMeta(f io.ReaderAt, off int64) (m boltMeta, ok bool) {
	var buf [metaSize]byte
	if _, err := f.ReadAt(buf[:], off); err != nil {
		return m, false
	}
	le := binary.LittleEndian // bbolt writes the host's order; evidenced runs on little-endian hosts
	meta := buf[pageHeaderSize:]
	if le.Uint32(meta[0:]) != boltMagic || le.Uint32(meta[4:]) != boltVersion {
		return m, false
	}
	h := fnv.New64a()
	h.Write(meta[:metaChecksumOff-pageHeaderSize])
	if h.Sum64() != le.Uint64(buf[metaChecksumOff:]) {
		return m, false
	}
	return boltMeta{pageSize: le.Uint32(meta[8:]), pgid: le.Uint64(meta[40:]), txid: le.Uint64(meta[48:])}, true
}

// checkHeader finds the meta page bbolt will use (the valid one with the highest transaction) and
// checks that the file holds every page it counts.
func checkHeader(f *os.File, size int64) error {
	if size == 0 {
		return errors.New("the file is empty")
	}
	m0, ok0 := readMeta(f, 0)
	var m1 boltMeta
	ok1 := false
	if ok0 {
		m1, ok1 = readMeta(f, int64(m0.pageSize))
	} else {
		// Without meta 0 the page size is unknown; bbolt tries 1 KiB … 16 MiB, so do we.
		for ps := int64(1024); ps <= 16<<20 && ps < size && !ok1; ps <<= 1 {
			m1, ok1 = readMeta(f, ps)
			ok1 = ok1 && int64(m1.pageSize) == ps
		}
	}
	var m boltMeta
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
	case ok1:
		m = m1
	default:
		return fmt.Errorf("it is %d bytes long and has no valid bbolt header", size)
	}
	if m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0 {
		return fmt.Errorf("its header gives an impossible page size %d", m.pageSize)
	}
	if m.pgid < 4 || m.pgid > uint64(1)<<47/uint64(m.pageSize) {
		return fmt.Errorf("its header gives an impossible page count %d", m.pgid)
	}
	if need := int64(m.pgid) * int64(m.pageSize); size < need {
		return fmt.Errorf("it is %d bytes long but its header says it holds %d bytes: it was truncated", size, need)
	}
	return nil
}

// guard runs fn with memory faults turned into panics (a page of garbage can point bbolt anywhere in
// the mapping) and any panic turned into an error.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt failed reading it: %v", r)
		}
	}()
	return fn()
}

// Check verifies the state file at path without writing to it: its size against its header, every
// page reachable from the buckets, and bbolt's consistency check (tx.Check). A missing file is
// fs.ErrNotExist; a file the daemon holds is ErrInUse; a damaged one is a *DamagedError.
func Check(path string) error {
	db, err := openChecked(path, lockWait)
	if err != nil {
		return err
	}
	return db.Close()
}

// openChecked opens the file read-only, waiting up to wait for another process's lock, and returns
// it only if Check's tests pass.
func openChecked(path string, wait time.Duration) (*bolt.DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	damaged := func(reason error) error { return &DamagedError{Path: path, Reason: reason.Error()} }
	if !fi.Mode().IsRegular() {
		return nil, damaged(errors.New("it is not a regular file"))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	err = checkHeader(f, fi.Size())
	f.Close()
	if err != nil {
		return nil, damaged(err)
	}
	var db *bolt.DB
	// PreLoadFreelist: read the free list here, under guard, not later in tx.Check's own goroutine.
	err = guard(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: wait})
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%s: %w", path, ErrInUse)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("state file: %w", err)
	case err != nil:
		return nil, damaged(err)
	}
	// Touch every page the buckets reach in this goroutine, where a fault is an error; tx.Check then
	// runs in bbolt's goroutine over pages known to be readable.
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if err := walk(tx.Cursor(), tx.Bucket); err != nil {
				return err
			}
			return checkTx(tx)
		})
	})
	if err != nil {
		db.Close()
		return nil, damaged(err)
	}
	return db, nil
}

// walk reads every key and value under a cursor, descending into nested buckets.
func walk(c *bolt.Cursor, bucket func([]byte) *bolt.Bucket) error {
	sum := crc32.NewIEEE()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		sum.Write(k)
		if v != nil {
			sum.Write(v)
			continue
		}
		b := bucket(k)
		if b == nil {
			return fmt.Errorf("bucket %q is unreadable", k)
		}
		if err := walk(b.Cursor(), b.Bucket); err != nil {
			return err
		}
	}
	return nil
}

// checkTx runs bbolt's consistency check and returns its first findings as one error.
func checkTx(tx *bolt.Tx) error {
	var found []string
	n := 0
	for err := range tx.Check() {
		if n++; len(found) < 3 {
			found = append(found, err.Error())
		}
	}
	if n == 0 {
		return nil
	}
	if n > len(found) {
		found = append(found, fmt.Sprintf("and %d more", n-len(found)))
	}
	return fmt.Errorf("consistency check: %s", strings.Join(found, "; "))
}

// Check runs bbolt's consistency check on the open store. It blocks writers meanwhile: tx.Check is
// safe beside writers only in a writable transaction.
func (s *Store) Check() error {
	return s.db.Update(checkTx)
}

// Backup writes a consistent copy of the open store to w (a snapshot; writers go on meanwhile).
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Size is the size of the copy Backup writes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// BackupFile copies the closed state file at path to dst after checking it; it refuses a damaged file
// and answers ErrInUse while the daemon holds it.
func BackupFile(path, dst string) error {
	db, err := openChecked(path, lockWait)
	if err != nil {
		return err
	}
	defer db.Close()
	return WriteBackup(dst, func(w io.Writer) error {
		return db.View(func(tx *bolt.Tx) error { _, err := tx.WriteTo(w); return err })
	})
}

// WriteBackup writes a backup to dst through a temporary file, checks the copy, and only then gives
// it its name, so that dst is either absent, the old file, or a checked copy.
func WriteBackup(dst string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := Check(tmp.Name()); err != nil {
		return fmt.Errorf("backup to %s: the copy does not check: %w", dst, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// create makes a new, empty state file at path through a temporary name, so that a crash during
// creation never leaves a 0-byte evidenced.db (which Open must treat as damage, not as new).
func create(path string) error {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create store: %w", err)
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: lockWait})
	if err != nil {
		return fmt.Errorf("create store %s: %w", tmp, err)
	}
	if err := db.Update(initBuckets); err != nil {
		db.Close()
		return fmt.Errorf("create store %s: %w", tmp, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("create store %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
