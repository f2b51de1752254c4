// Package target is where images go: a local folder below a configured root, a CIFS share through
// the kernel client, or a CIFS share through a user-space SMB2/3 client. Formats write through the
// small File interface and never know which one they have.
package target

import (
	"errors"
	"io"
)

// File is one output file being written.
type File interface {
	io.Writer
	io.WriterAt
	Sync() error
	Close() error
}

// ReadFile is one file opened for reading back (verification).
type ReadFile interface {
	io.ReaderAt
	io.Reader
	io.Closer
	Size() int64
}

// Target is an opened target folder. Names are relative to the folder, '/'-separated.
type Target interface {
	// Create makes a new file; it never overwrites (ErrExist).
	Create(name string) (File, error)
	// OpenFile opens an existing file for writing at its end-state (resume); it does not truncate.
	OpenFile(name string) (File, error)
	Open(name string) (ReadFile, error)
	Truncate(name string, size int64) error
	Stat(name string) (size int64, err error)
	Rename(oldName, newName string) error
	Remove(name string) error
	MkdirAll(dir string) error
	// Mkdir makes one new folder; an existing one (or anything else by that name) is ErrExist.
	Mkdir(dir string) error
	// FreeSpace is the free bytes on the file system or share.
	FreeSpace() (int64, error)
	// Display is how a path inside the target is shown to the user (check-task target/report).
	Display(name string) string
	Close() error
}

// Spec names a target folder as the API gives it.
type Spec struct {
	Folder       string // //server/share/dir, \\server\share\dir, or /abs/local/dir
	Login        string
	Password     string // never logged, never stored
	Domain       string
	MountOptions string
	DNSLookup    string
}

// ErrExist: the file is already there; images are never overwritten.
var ErrExist = errors.New("file already exists")
