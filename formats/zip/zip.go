// Package zip writes logical evidence (the files of a seized volume) as a streaming ZIP archive with
// a manifest. Each file becomes a member with its modification time (and, when known, its access
// and creation times); manifest.csv and manifest.json at the root of the archive list every entry
// with its metadata, requested hashes and the errors met while reading it, so an examiner can verify
// the extracted files with ordinary tools (unzip, md5sum, sha256sum).
//
// The archive is written front to back to a plain io.Writer (a file on a network share): members
// carry data descriptors and ZIP64 records are used where needed (members over 4 GiB, more than
// 65535 entries), as archive/zip does. File contents are never buffered whole; the manifest rows
// are kept in memory (a few hundred bytes per entry) until Close writes them out.
package zip

import (
	azip "archive/zip"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"

	"github.com/evidenced/evidenced/formats/digest"
)

// Names of the manifest members written at the root of the archive. Member names that collide with
// them (case-insensitively, for extraction on Windows) are rejected.
const (
	ManifestCSV  = "manifest.csv"
	ManifestJSON = "manifest.json"
)

// The hashes accepted in Options.Hashes; the manifest lists them in digest order, by their
// lower-case names.
var accepted = []digest.Name{digest.MD5, digest.SHA1, digest.SHA256}

// deflateLevel: klauspost's level 5 keeps most of the ratio of level 6 at a fraction of the CPU,
// which matters on a 2-core appliance hashing at the same time.
const deflateLevel = 5

// copyBufSize is the one copy buffer a Writer reuses for all members.
const copyBufSize = 256 << 10

// Options selects what the Writer computes and how members are stored.
type Options struct {
	Hashes   []digest.Name // MD5, SHA1 and SHA256 computed per file; manifest order is always md5, sha1, sha256
	Compress bool          // deflate when true, store when false
}

// Entry describes one file or directory of the evidence.
type Entry struct {
	Path string // slash-separated, e.g. "p1-ext4/usr/bin/ls" (no leading slash, no "." or ".." segments, no NUL)
	Dir  bool
	Size int64
	// Times are zero when unknown. Created is the birth time; Changed is the inode change time,
	// which has no place in a ZIP header and is recorded in the manifest only.
	Created, Modified, Accessed, Changed time.Time

	Deleted bool // recovered from unallocated metadata; noted in the manifest and the member comment
}

// Writer writes one archive. It is not safe for concurrent use.
type Writer struct {
	zw     *azip.Writer
	hashes []string    // validated, in manifest order
	hs     []hash.Hash // one per name in hashes, reset for each member
	opt    Options
	err    error // sticky: the archive itself is broken (output failed, or bad Options)
	closed bool

	buf  []byte        // copy buffer, reused across members
	fl   *flate.Writer // reused deflater: archive/zip closes a member before opening the next
	rows []row
	seen map[string]struct{} // member paths, without trailing slash, to refuse duplicates
}

// row is one manifest line.
type row struct {
	path    string
	dir     bool
	size    int64 // -1: unknown (error-only rows without metadata)
	times   [4]time.Time
	deleted bool
	sums    []string // hex digests in w.hashes order; nil when not hashed
	err     string
}

// NewWriter starts an archive on w. Invalid Options are reported by the first Add and by Close.
func NewWriter(w io.Writer, opt Options) *Writer {
	zw := &Writer{zw: azip.NewWriter(w), opt: opt, seen: make(map[string]struct{})}
	var names []digest.Name
	names, zw.err = normalizeHashes(opt.Hashes)
	for _, n := range names {
		h, _ := digest.New(n) // normalizeHashes accepts only names New knows
		zw.hs = append(zw.hs, h)
		zw.hashes = append(zw.hashes, n.Lower())
	}
	zw.zw.RegisterCompressor(azip.Deflate, zw.compressor)
	return zw
}

// normalizeHashes checks the requested hashes and puts them in manifest order.
func normalizeHashes(in []digest.Name) ([]digest.Name, error) {
	out := make([]digest.Name, 0, len(in))
	for _, h := range in {
		n, err := digest.Parse(string(h))
		if err != nil || !slices.Contains(accepted, n) {
			return nil, fmt.Errorf("zip: unknown hash %q (want md5, sha1 or sha256)", string(h))
		}
		out = append(out, n)
	}
	return digest.Order(out), nil
}

// compressor hands archive/zip the Writer's single deflater, reset for each member.
func (w *Writer) compressor(out io.Writer) (io.WriteCloser, error) {
	if w.fl == nil {
		fl, err := flate.NewWriter(out, deflateLevel)
		if err != nil {
			return nil, fmt.Errorf("zip: deflate: %w", err)
		}
		w.fl = fl
		return fl, nil
	}
	w.fl.Reset(out)
	return w.fl, nil
}

// checkPath enforces the member name rules; the error names the path.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("zip: empty path")
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("zip: path %q contains NUL", p)
	case !utf8.ValidString(p):
		// The manifest is UTF-8 text; a name it cannot spell would not match its member.
		return fmt.Errorf("zip: path %q is not valid UTF-8 (escape it before adding)", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("zip: path %q is absolute", p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "..":
			return fmt.Errorf("zip: path %q contains \"..\"", p)
		case ".", "":
			return fmt.Errorf("zip: path %q has an empty or \".\" segment", p)
		}
	}
	return nil
}

// claim validates a member path and reserves it.
func (w *Writer) claim(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if strings.EqualFold(p, ManifestCSV) || strings.EqualFold(p, ManifestJSON) {
		return fmt.Errorf("zip: path %q conflicts with the manifest at the archive root (put files under a volume folder)", p)
	}
	if _, dup := w.seen[p]; dup {
		return fmt.Errorf("zip: path %q added twice", p)
	}
	w.seen[p] = struct{}{}
	return nil
}

func (w *Writer) usable() error {
	if w.closed {
		return errors.New("zip: writer is closed")
	}
	return w.err
}

// fail records an output error: the archive cannot be trusted after it.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// AddDir adds a directory member (with a trailing slash) and its manifest row.
func (w *Writer) AddDir(e Entry) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.claim(e.Path); err != nil {
		return err
	}
	fh := header(e, e.Path+"/", azip.Store)
	fh.SetMode(fs.ModeDir | 0o755)
	if _, err := w.zw.CreateHeader(fh); err != nil {
		return w.fail(fmt.Errorf("zip: write directory %q: %w", e.Path, err))
	}
	w.rows = append(w.rows, newRow(e, true, 0))
	return nil
}

// AddFile streams r into a new member, hashing on the way, and returns the hex digests keyed by
// hash name. If r fails or yields other than e.Size bytes, the member keeps the bytes read (at most
// e.Size), the manifest row records them (size and hashes are those of the member) and the error,
// and AddFile returns the error with the digests; the archive stays valid and writing may go on.
// Errors that break the archive itself (the output failed) are sticky: every later call returns them.
func (w *Writer) AddFile(e Entry, r io.Reader) (map[string]string, error) {
	if err := w.usable(); err != nil {
		return nil, err
	}
	if e.Dir {
		return nil, fmt.Errorf("zip: AddFile %q: entry is a directory (use AddDir)", e.Path)
	}
	if e.Size < 0 {
		return nil, fmt.Errorf("zip: AddFile %q: negative size %d", e.Path, e.Size)
	}
	if err := w.claim(e.Path); err != nil {
		return nil, err
	}
	method := azip.Store
	if w.opt.Compress && e.Size > 0 { // deflating nothing would still cost two bytes
		method = azip.Deflate
	}
	fh := header(e, e.Path, method)
	fh.SetMode(0o644)
	member, err := w.zw.CreateHeader(fh)
	if err != nil {
		return nil, w.fail(fmt.Errorf("zip: write header of %q: %w", e.Path, err))
	}

	hs := w.hs
	for _, h := range hs {
		h.Reset()
	}
	n, readErr, writeErr := w.copy(member, hs, r, e.Size)
	if writeErr != nil {
		return nil, w.fail(fmt.Errorf("zip: write %q: %w", e.Path, writeErr))
	}

	rw := newRow(e, false, n)
	sums := make(map[string]string, len(hs))
	rw.sums = make([]string, len(hs))
	for i, h := range hs {
		rw.sums[i] = hex.EncodeToString(h.Sum(nil))
		sums[w.hashes[i]] = rw.sums[i]
	}
	if readErr != nil {
		readErr = fmt.Errorf("zip: read %q: %w", e.Path, readErr)
		rw.err = readErr.Error()
	}
	w.rows = append(w.rows, rw)
	return sums, readErr
}

// copy moves at most size bytes from r to the member and the hashes, then checks that r has no
// more. A short source or a read error comes back as readErr; writeErr means the output failed.
func (w *Writer) copy(member io.Writer, hs []hash.Hash, r io.Reader, size int64) (n int64, readErr, writeErr error) {
	if w.buf == nil {
		w.buf = make([]byte, copyBufSize)
	}
	for n < size {
		chunk := w.buf
		if rem := size - n; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		k, err := r.Read(chunk)
		if k > 0 {
			if _, werr := member.Write(chunk[:k]); werr != nil {
				return n, nil, werr
			}
			for _, h := range hs {
				h.Write(chunk[:k]) // hash.Hash never fails
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, fmt.Errorf("source ended after %d of %d bytes", n, size), nil
		}
		if err != nil {
			return n, fmt.Errorf("after %d of %d bytes: %w", n, size, err), nil
		}
	}
	// A source longer than its metadata says (a live file, a wrong size): keep the declared size,
	// since that is what the header promised, and report it.
	switch k, err := io.ReadFull(r, w.buf[:1]); {
	case k > 0:
		return n, fmt.Errorf("source is longer than its size of %d bytes (the member holds the first %d)", size, size), nil
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("after all %d bytes: %w", size, err), nil
	}
	return n, nil, nil
}

// AddError lists a file that could not be read: a manifest row with the error, no member.
func (w *Writer) AddError(path string, err error) {
	w.AddErrorEntry(Entry{Path: path, Size: -1}, err)
}

// AddErrorEntry is AddError keeping the metadata that could be read (size, times, deleted); its
// Size is recorded as is, -1 meaning unknown.
func (w *Writer) AddErrorEntry(e Entry, err error) {
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	rw := newRow(e, e.Dir, e.Size)
	rw.err = msg
	w.rows = append(w.rows, rw)
}

// Close writes manifest.csv and manifest.json at the root of the archive, then the central
// directory. It does not close the underlying io.Writer.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("zip: writer is closed")
	}
	w.closed = true
	defer func() { w.buf, w.rows, w.seen = nil, nil, nil }()
	if w.err != nil {
		return w.err
	}
	now := time.Now().UTC()
	for _, m := range []struct {
		name  string
		write func(io.Writer) error
	}{{ManifestCSV, w.writeCSV}, {ManifestJSON, w.writeJSON}} {
		method := azip.Store
		if w.opt.Compress {
			method = azip.Deflate
		}
		fh := &azip.FileHeader{Name: m.name, Method: method, Modified: now}
		fh.SetMode(0o444)
		mw, err := w.zw.CreateHeader(fh)
		if err != nil {
			return w.fail(fmt.Errorf("zip: write %s: %w", m.name, err))
		}
		if err := m.write(mw); err != nil {
			return w.fail(fmt.Errorf("zip: write %s: %w", m.name, err))
		}
	}
	if err := w.zw.Close(); err != nil {
		return w.fail(fmt.Errorf("zip: write central directory: %w", err))
	}
	return nil
}

func newRow(e Entry, dir bool, size int64) row {
	rw := row{path: e.Path, dir: dir, size: size, deleted: e.Deleted}
	for i, t := range [4]time.Time{e.Created, e.Modified, e.Accessed, e.Changed} {
		if !t.IsZero() {
			rw.times[i] = t.UTC()
		}
	}
	return rw
}

// The ZIP time fields cannot hold everything a damaged file system may report: the MS-DOS time
// starts in 1980 and the extended timestamp is an unsigned 32-bit Unix time. Outside that range the
// header gets the closest bound; the manifest (and the NTFS field, which spans 1601-30828) keeps the
// true value.
var (
	minHeaderTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	maxHeaderTime = time.Unix(1<<32-1, 0).UTC()
)

// header builds the member header: the modification time in UTC in both the MS-DOS fields and the
// extended timestamp (archive/zip writes the latter from Modified; Info-ZIP unzip restores it), and
// an NTFS extra field with creation and access times when either is known.
func header(e Entry, name string, method uint16) *azip.FileHeader {
	fh := &azip.FileHeader{Name: name, Method: method}
	if e.Deleted {
		fh.Comment = "deleted" // visible in any zip browser, not only in the manifest
	}
	if e.Modified.IsZero() {
		// Unknown: the earliest MS-DOS date rather than the invalid all-zero one, and no extended
		// timestamp to claim otherwise.
		fh.ModifiedDate = 1<<5 | 1 // 1980-01-01
	} else {
		fh.Modified = clampTime(e.Modified.UTC())
	}
	if !e.Created.IsZero() || !e.Accessed.IsZero() {
		fh.Extra = ntfsExtra(e.Modified, e.Accessed, e.Created)
	}
	return fh
}

func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minHeaderTime):
		return minHeaderTime
	case t.After(maxHeaderTime):
		return maxHeaderTime
	}
	return t
}

// ntfsExtra encodes the NTFS extra field (0x000a): modification, access and creation times as
// Windows FILETIMEs (100 ns since 1601), 0 when unknown or before 1601. Unlike the extended
// timestamp it is identical in the local and central headers, so one Extra serves both.
func ntfsExtra(mtime, atime, ctime time.Time) []byte {
	b := make([]byte, 36)
	binary.LittleEndian.PutUint16(b[0:], 0x000a)
	binary.LittleEndian.PutUint16(b[2:], 32)
	// b[4:8] reserved
	binary.LittleEndian.PutUint16(b[8:], 1) // attribute tag 1: the three times
	binary.LittleEndian.PutUint16(b[10:], 24)
	for i, t := range []time.Time{mtime, atime, ctime} {
		binary.LittleEndian.PutUint64(b[12+8*i:], filetime(t))
	}
	return b
}

func filetime(t time.Time) uint64 {
	const (
		epochDelta = 11644473600 // seconds from 1601-01-01 to 1970-01-01
		maxSecs    = 1<<63/10_000_000 - 1
	)
	if t.IsZero() {
		return 0
	}
	secs := t.Unix() + epochDelta
	if secs < 0 || secs > maxSecs {
		return 0
	}
	return uint64(secs)*10_000_000 + uint64(t.Nanosecond()/100)
}
