package target

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/directio"
)

// Local is a folder on a local file system. Every access goes through an os.Root opened on the
// folder, so no name inside it (and no symbolic link planted there) can reach outside it.
type Local struct {
	root *os.Root
	dir  string // the folder's resolved path, for display
}

// OpenLocal opens (creating when missing) dir, which must lie below one of roots. The whole path is
// checked before anything is created: the folders are made through an os.Root opened on the
// configured root, so a symbolic link on the way that leads outside the roots is refused without a
// single folder being created there.
func OpenLocal(dir string, roots []string) (*Local, error) {
	clean := filepath.Clean(dir)
	if !filepath.IsAbs(clean) {
		return nil, fmt.Errorf("target folder %q is not an absolute path", dir)
	}
	top, rel, ok := split(clean, roots)
	if !ok {
		return nil, fmt.Errorf("target folder %q is not below a configured target root (%s)", dir, strings.Join(roots, ", "))
	}
	// The configured root itself is the operator's, trusted; it is made when missing.
	if err := os.MkdirAll(top, 0o755); err != nil {
		return nil, fmt.Errorf("create target root: %w", err)
	}
	rt, err := os.OpenRoot(top)
	if err != nil {
		return nil, fmt.Errorf("open target root: %w", err)
	}
	defer rt.Close()
	if err := rt.MkdirAll(rel, 0o755); err != nil {
		return nil, fmt.Errorf("target folder %q leads outside the target roots or cannot be created: %w", dir, err)
	}
	sub, err := rt.OpenRoot(rel)
	if err != nil {
		return nil, fmt.Errorf("target folder %q leads outside the target roots: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("resolve target folder: %w", err)
	}
	return &Local{root: sub, dir: real}, nil
}

// split finds the configured root dir lies below (as given or with its links resolved) and the
// path of dir relative to it ("." for the root itself).
func split(dir string, roots []string) (root, rel string, ok bool) {
	for _, r := range roots {
		forms := []string{filepath.Clean(r)}
		if rr, err := filepath.EvalSymlinks(r); err == nil {
			forms = append(forms, rr)
		}
		for _, f := range forms {
			if dir == f {
				return f, ".", true
			}
			if strings.HasPrefix(dir, f+string(filepath.Separator)) || f == string(filepath.Separator) {
				rel, err := filepath.Rel(f, dir)
				if err == nil {
					return f, rel, true
				}
			}
		}
	}
	return "", "", false
}

// Below reports whether dir is at or below one of roots (after cleaning and resolving links).
func Below(dir string, roots []string) bool { return below(filepath.Clean(dir), roots) }

func below(dir string, roots []string) bool {
	_, _, ok := split(dir, roots)
	return ok
}

// path checks a name given by the daemon (targetFile, report folder) and makes it relative to the
// folder; os.Root refuses what still escapes through links.
func (l *Local) path(name string) (string, error) {
	p := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(p) || p == ".." || strings.HasPrefix(p, ".."+string(filepath.Separator)) {
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
	root     *os.Root
	name     string // in root
	direct   *os.File
	noDirect bool
}

func (f *directFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.noDirect && len(p) > 0 && len(p)%directio.Align == 0 && off%directio.Align == 0 &&
		directio.Aligned(p) {
		if f.direct == nil {
			d, err := f.root.OpenFile(f.name, os.O_WRONLY|unix.O_DIRECT, 0)
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
	f, err := l.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s: %w", l.Display(name), ErrExist)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", l.Display(name), err)
	}
	return &directFile{File: f, root: l.root, name: p}, nil
}

// OpenFile opens an existing file for writing without truncating it.
func (l *Local) OpenFile(name string) (File, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := l.root.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.Display(name), err)
	}
	return &directFile{File: f, root: l.root, name: p}, nil
}

func (l *Local) Open(name string) (ReadFile, error) {
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := l.root.Open(p)
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
	f, err := l.root.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *Local) Stat(name string) (int64, error) {
	p, err := l.path(name)
	if err != nil {
		return 0, err
	}
	st, err := l.root.Stat(p)
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
	return l.root.Rename(o, n)
}

func (l *Local) Remove(name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	return l.root.Remove(p)
}

func (l *Local) MkdirAll(dir string) error {
	p, err := l.path(dir)
	if err != nil {
		return err
	}
	return l.root.MkdirAll(p, 0o755)
}

// Mkdir makes a new folder and never reuses one (ErrExist): a report folder is reserved with it.
// A symbolic link in its place counts as existing and is never followed.
func (l *Local) Mkdir(dir string) error {
	p, err := l.path(dir)
	if err != nil {
		return err
	}
	if err := l.root.Mkdir(p, 0o755); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", l.Display(dir), ErrExist)
	} else if err != nil {
		return fmt.Errorf("create folder %s: %w", l.Display(dir), err)
	}
	return nil
}

func (l *Local) FreeSpace() (int64, error) {
	d, err := l.root.Open(".")
	if err != nil {
		return 0, fmt.Errorf("statfs %s: %w", l.dir, err)
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
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

func (l *Local) Close() error { return l.root.Close() }
