package target

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/imaging/source"
)

// Local is a folder on a local file system.
type Local struct {
	dir string
}

// OpenLocal opens (creating when missing) dir, which must lie below one of roots.
func OpenLocal(dir string, roots []string) (*Local, error) {
	clean := filepath.Clean(dir)
	if !filepath.IsAbs(clean) {
		return nil, fmt.Errorf("target folder %q is not an absolute path", dir)
	}
	if !below(clean, roots) {
		return nil, fmt.Errorf("target folder %q is not below a configured target root (%s)", dir, strings.Join(roots, ", "))
	}
	if err := os.MkdirAll(clean, 0o755); err != nil {
		return nil, fmt.Errorf("create target folder: %w", err)
	}
	// Resolve links so that a symlink cannot lead out of the roots.
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return nil, fmt.Errorf("resolve target folder: %w", err)
	}
	if !below(real, roots) {
		return nil, fmt.Errorf("target folder %q leads outside the target roots", dir)
	}
	return &Local{dir: real}, nil
}

// Below reports whether dir is at or below one of roots (after cleaning and resolving links).
func Below(dir string, roots []string) bool { return below(filepath.Clean(dir), roots) }

func below(dir string, roots []string) bool {
	for _, r := range roots {
		r = filepath.Clean(r)
		if rr, err := filepath.EvalSymlinks(r); err == nil {
			r = rr
		}
		if dir == r || strings.HasPrefix(dir, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

func (l *Local) path(name string) (string, error) {
	p := filepath.Join(l.dir, filepath.FromSlash(name))
	if p != l.dir && !strings.HasPrefix(p, l.dir+string(filepath.Separator)) {
		return "", fmt.Errorf("file name %q leaves the target folder", name)
	}
	return p, nil
}

type localFile struct{ *os.File }

// directFile sends page-aligned WriteAt calls (whole raw-image blocks, straight from the source's
// aligned buffers) through a second O_DIRECT descriptor: copying gigabytes into the page cache
// costs more kernel CPU than hashing them, and an imaging appliance has no use for the cached
// copy. Everything else goes through the ordinary descriptor; Linux keeps the two coherent.
type directFile struct {
	*os.File
	direct   *os.File
	noDirect bool
}

func (f *directFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.noDirect && len(p) > 0 && len(p)%source.Align == 0 && off%source.Align == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%source.Align == 0 {
		if f.direct == nil {
			d, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
			if err != nil {
				f.noDirect = true // tmpfs and some FUSE file systems refuse O_DIRECT
				return f.File.WriteAt(p, off)
			}
			f.direct = d
		}
		n, err := f.direct.WriteAt(p, off)
		if err == nil || !errors.Is(err, unix.EINVAL) || n != 0 {
			return n, err
		}
		f.noDirect = true
	}
	return f.File.WriteAt(p, off)
}

func (f *directFile) Close() error {
	if f.direct != nil {
		if err := f.direct.Close(); err != nil {
			f.File.Close()
			return err
		}
	}
	return f.File.Close()
}

func (f localFile) Size() int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// Create makes a new file and never overwrites one.
func (l *Local) Create(name string) (File, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s: %w", l.Display(name), ErrExist)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", l.Display(name), err)
	}
	return &directFile{File: f}, nil
}

// OpenFile opens an existing file for writing without truncating it.
func (l *Local) OpenFile(name string) (File, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.Display(name), err)
	}
	return &directFile{File: f}, nil
}

func (l *Local) Open(name string) (ReadFile, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.Display(name), err)
	}
	return localFile{f}, nil
}

func (l *Local) Truncate(name string, size int64) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	return os.Truncate(p, size)
}

func (l *Local) Stat(name string) (int64, error) {
	p, err := l.path(name)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (l *Local) Rename(oldName, newName string) error {
	o, err := l.path(oldName)
	if err != nil {
		return err
	}
	n, err := l.path(newName)
	if err != nil {
		return err
	}
	return os.Rename(o, n)
}

func (l *Local) Remove(name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

func (l *Local) MkdirAll(dir string) error {
	p, err := l.path(dir)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, 0o755)
}

func (l *Local) FreeSpace() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(l.dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", l.dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func (l *Local) Display(name string) string {
	if name == "" {
		return l.dir
	}
	return filepath.Join(l.dir, filepath.FromSlash(name))
}

func (l *Local) Close() error { return nil }
