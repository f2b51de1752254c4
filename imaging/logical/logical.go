// Package logical reads the partition table and the file systems of an evidence disk without
// mounting it, for logical imaging (copying a seized drive's files into an L01 or a zip).
//
// Everything reads through an io.ReaderAt: the source is never opened for writing, nothing is
// mounted, and no kernel driver interprets hostile evidence. Volumes finds the file systems (MBR
// with logical partitions, GPT, or a bare file system); OpenFS opens one read-only and walks its
// files in a deterministic order.
//
// NTFS is parsed by Velocidex's go-ntfs; FAT12/16/32, exFAT and ext2/3/4 by this package (see
// fat.go, exfat.go and ext.go for why). All of it is checked against SleuthKit in the tests.
// Our parsers return errors on any input (they are fuzzed: fuzz_test.go). go-ntfs, third-party code,
// is wrapped so that a panic on a corrupt NTFS comes back as a *PanicError instead of taking down
// the daemon.
package logical

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime/debug"
	"strings"
	"time"
)

// Volume is one file system location on a source.
type Volume struct {
	Index    int    // 1-based partition number in the table; 0 for a bare file system (no table)
	Offset   int64  // bytes from the start of the source
	Size     int64  // bytes
	Scheme   string // "mbr", "gpt" or "none"
	PartType string // MBR type as "0x83", or the GPT type GUID
	PartName string // GPT partition name; empty for MBR
	FS       string // "ntfs", "fat12", "fat16", "fat32", "exfat", "ext2", "ext3", "ext4"; recognised but not read: "apfs", "hfsplus", "xfs", "btrfs", "refs", "bitlocker", "luks"; "" when unknown
	Label    string // volume label when known
}

// Entry is one file or directory of a file system.
type Entry struct {
	Path                                 string // slash-separated, no leading slash: "usr/bin/ls"
	Dir                                  bool
	Size                                 int64
	Created, Modified, Accessed, Changed time.Time // zero when the FS has no such time (Changed = metadata modified)
	Attributes                           uint32    // FS-native: FAT/NTFS attribute bits, ext mode (type and permissions)
	Deleted                              bool      // found deleted: FAT, exFAT and NTFS (see their files); never on ext
	ID                                   uint64    // FS-native id: MFT entry number, inode number, FAT first cluster
	// Mode carries the type bits in Go's terms (fs.ModeDir, fs.ModeSymlink, devices, ...) and, on
	// ext, the permissions; FAT and NTFS have only files and directories.
	Mode fs.FileMode

	// exFAT only, carried from Walk to Open: the data is one contiguous run without a FAT
	// chain (NoFatChain), and a directory's length.
	contiguous bool
	dirSize    int64
}

// Regular reports whether e is a regular file, not a directory, symbolic link, device etc.
func (e Entry) Regular() bool { return !e.Dir && e.Mode.IsRegular() }

// FS is a read-only open file system. It is not safe for concurrent use, except where
// ConcurrentOpen says so.
type FS interface {
	// Walk visits every entry in pre-order (a directory before its contents), sorted by name
	// within a directory. An error on one entry (unreadable directory etc.) goes to onErr and the
	// walk continues; only fn's error stops it, and Walk returns it.
	Walk(fn func(Entry) error, onErr func(path string, err error)) error
	// Open returns the file's content (exactly Entry.Size bytes) for a non-directory entry from Walk.
	Open(e Entry) (io.ReadCloser, error)
}

// ConcurrentOpen reports whether fsys's Open, and the readers it returns, may be used from several
// goroutines at once (Walk never may): true for ext, FAT and exFAT, whose volumes hold nothing that
// changes after OpenFS and read the source only through its ReaderAt; false for NTFS, whose parser
// (go-ntfs) keeps caches of its own.
func ConcurrentOpen(fsys FS) bool {
	switch fsys.(type) {
	case *extVol, *fatVol, *exfatVol:
		return true
	}
	return false
}

// ErrUnsupported is wrapped by OpenFS for file systems it can detect but not read.
var ErrUnsupported = errors.New("file system not supported")

// ErrNoVolumes is returned by Volumes when the source has neither a partition table nor a
// file system it recognises (blank, encrypted or garbage).
var ErrNoVolumes = errors.New("no partition table or known file system")

// OpenFS opens the volume's file system read-only. It returns an error, never panics, for an
// unsupported or corrupt file system. It re-detects the file system when v.FS is empty.
func OpenFS(src io.ReaderAt, v Volume) (fsys FS, err error) {
	if v.Size <= 0 {
		return nil, fmt.Errorf("open volume at %d: empty volume", v.Offset)
	}
	sec := io.NewSectionReader(src, v.Offset, v.Size)
	kind := v.FS
	if kind == "" {
		kind, _ = detectFS(sec)
	}
	switch kind {
	case "ntfs":
		defer recoverTo(&err, "ntfs: open")
		return nonNil(openNTFS(sec))
	case "fat12", "fat16", "fat32":
		return nonNil(openFAT(sec))
	case "ext2", "ext3", "ext4":
		return nonNil(openExt(sec))
	case "exfat":
		return nonNil(openExFAT(sec))
	case "":
		return nil, fmt.Errorf("volume at %d: unknown file system: %w", v.Offset, ErrUnsupported)
	case "bitlocker", "luks":
		return nil, fmt.Errorf("%s: encrypted volume (image it physically; it needs the key to be read): %w", kind, ErrUnsupported)
	default:
		return nil, fmt.Errorf("%s: %w", kind, ErrUnsupported)
	}
}

// childPath joins a directory's path and an entry name read from the evidence. A name that is
// empty, "." or "..", or holds "/" or NUL would name another entry or climb out of the export when
// the path is used; such a name is listed hex-encoded and reported to onErr, so nothing is lost.
func childPath(fsName, dir, name string, onErr func(string, error)) string {
	if name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") {
		return path.Join(dir, name)
	}
	p := path.Join(dir, "invalid-name-"+hex.EncodeToString([]byte(name)))
	onErr(p, fmt.Errorf("%s: invalid file name %q in directory %q", fsName, name, "/"+dir))
	return p
}

// nonNil keeps a typed nil pointer from becoming a non-nil FS interface next to an error.
func nonNil[T FS](f T, err error) (FS, error) {
	if err != nil {
		return nil, err
	}
	return f, nil
}

// openTrivial answers the Opens every file system treats alike: a directory has no content to
// open and an empty file needs no reads. done reports whether it answered.
func openTrivial(fsName string, e Entry) (rc io.ReadCloser, done bool, err error) {
	if e.Dir {
		return nil, true, fmt.Errorf("%s: open %s: is a directory", fsName, e.Path)
	}
	if e.Size == 0 {
		return io.NopCloser(strings.NewReader("")), true, nil
	}
	return nil, false, nil
}

// PanicError is a panic of the third-party NTFS parser on a corrupt file system. Its message is one
// line, fit for a report; Stack is for the log.
type PanicError struct {
	What  string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("%s: NTFS parser failed on a corrupt file system: %v", e.What, e.Value)
}

// recoverTo turns a panic of go-ntfs into a *PanicError: it indexes out of range or dereferences
// nil on corrupt structures, and one bad file system must not stop the imaging of the others.
// Only go-ntfs calls are wrapped: a panic in this package's own code is a bug the fuzzers find.
func recoverTo(err *error, what string) {
	if r := recover(); r != nil {
		*err = &PanicError{What: what, Value: r, Stack: debug.Stack()}
	}
}
