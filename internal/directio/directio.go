// Package directio holds what O_DIRECT I/O needs: buffers on the alignment block devices demand,
// the test for it, and a read-only File that reads with O_DIRECT where the device or file system
// accepts it. Imaging reads and writes gigabytes once; going around the page cache keeps it from
// costing more kernel CPU than the hashing, and a source read that way is read from the drive,
// not from a cached copy.
package directio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Align is the buffer alignment O_DIRECT needs on every Linux block device we meet: the page
// size, which covers every logical sector size.
const Align = 4096

// Buffer allocates n bytes starting on an Align boundary.
func Buffer(n int) []byte {
	b := make([]byte, n+Align)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (Align - 1))
	if off != 0 {
		off = Align - off
	}
	return b[off : off+n : off+n]
}

// Aligned reports whether p starts on an Align boundary (an empty p is aligned).
func Aligned(p []byte) bool {
	return len(p) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(p)))%Align == 0
}

// File is a file or block device opened read-only for imaging.
type File struct {
	*os.File
	Direct bool // opened with O_DIRECT
	size   int64
}

// Size is the size of the device or file.
func (f *File) Size() int64 { return f.size }

// Open opens path read-only, with O_DIRECT when the file system or device accepts it, so that
// imaging neither trusts nor pollutes the page cache. It never opens for writing.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	direct := err == nil
	if err != nil {
		f, err = os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open source %s: %w", path, err)
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("size of source %s: %w", path, err)
	}
	// O_DIRECT needs aligned lengths; ReadAt reads the last partial block of a regular file
	// through a second, buffered descriptor.
	return &File{File: f, Direct: direct, size: size}, nil
}

// ReadAt reads with O_DIRECT where possible and falls back to a buffered read for an unaligned tail.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if !f.Direct || (len(p)%512 == 0 && off%512 == 0 && Aligned(p)) {
		n, err := f.File.ReadAt(p, off)
		if err == nil || !f.Direct || !errors.Is(err, syscall.EINVAL) {
			return n, err
		}
	}
	g, err := os.Open(f.Name())
	if err != nil {
		return 0, err
	}
	defer g.Close()
	return g.ReadAt(p, off)
}
