package output

import (
	azip "archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/formats/zip"
	"github.com/evidenced/evidenced/imaging/logical"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
)

// Container is a logical container being written (L01 or zip).
type Container interface {
	AddDir(e logical.Entry, path string) error
	// AddFile copies r; hashes are keyed MD5/SHA1. An error with Broken() == nil concerns this
	// file only (a source read error); the container stays consistent.
	AddFile(e logical.Entry, path string, r io.Reader) (map[string]string, error)
	AddError(e logical.Entry, path string, err error)
	// Prepare readies a file's content read ahead for AddPrepared (an L01 computes the file's
	// own hashes here). Unlike the other methods it is safe for concurrent use, so that several
	// files are prepared at once while the container stores others. data must not change until
	// AddPrepared has returned.
	Prepare(data []byte) Prepared
	// AddPrepared stores a prepared file as AddFile stores what it reads from a reader that gives
	// the prepared bytes and then readErr (nil: all e.Size bytes were read).
	AddPrepared(e logical.Entry, path string, p Prepared, readErr error) (map[string]string, error)
	// Broken is the first failure of the output itself (share full, connection lost).
	Broken() error
	Close() error
	// Hashes of the container, upper-case names (after Close).
	Hashes() map[string]string
	// Verify re-reads the written container and checks it against what was written.
	Verify(ctx context.Context) error
}

// Prepared is a file's content read ahead, readied by a Container's Prepare.
type Prepared struct {
	data []byte
	l01  ewf.PreparedFile
}

// Len is the number of content bytes.
func (p Prepared) Len() int { return len(p.data) }

// reader gives the prepared bytes, then readErr.
func (p Prepared) reader(readErr error) io.Reader {
	r := bytes.NewReader(p.data)
	if readErr == nil {
		return r
	}
	return io.MultiReader(r, errReader{readErr})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// outputErrors remembers the first write failure of any of a container's files.
type outputErrors struct {
	mu  sync.Mutex
	err error
}

func (o *outputErrors) note(err error) {
	if err == nil {
		return
	}
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

func (o *outputErrors) Broken() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// watch wraps a file just opened so that its write failures are recorded.
func (o *outputErrors) watch(f target.File, err error) (ewf.File, error) {
	if err != nil {
		return nil, err
	}
	return watchedFile{File: f, errs: o}, nil
}

// watchedFile records write failures of a target file.
type watchedFile struct {
	target.File
	errs *outputErrors
}

func (f watchedFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.errs.note(err)
	return n, err
}

func (f watchedFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.errs.note(err)
	return n, err
}

func (f watchedFile) Close() error {
	err := f.File.Close()
	f.errs.note(err)
	return err
}

// Resumable is a container that can be paused and continued later: L01.
type Resumable interface {
	Checkpoint() (ewf.LogicalState, error)
}

// OpenContainer creates a logical task's container, or reopens it at st when resuming.
func OpenContainer(spec Spec, tgt target.Target, st *ewf.LogicalState) (Container, error) {
	base, o := spec.Base, spec.Options
	md5On, sha1On := o.HasHash(digest.MD5), o.HasHash(digest.SHA1)
	if o.Format == options.Zip {
		return openZipSink(tgt, base+".zip", md5On, sha1On, o.Zip.Compress)
	}
	comp := ewf.CompressNone
	if o.L01.Compress {
		comp = ewf.CompressFast
	}
	acquired, id, software := spec.AcquiredAt, spec.Identity, spec.Software
	s := &l01Sink{tgt: tgt, first: base + ".L01"}
	create := func(name string) (ewf.File, error) { return s.errs.watch(tgt.Create(name)) }
	opt := ewf.LogicalOptions{
		Metadata: ewf.Metadata{
			CaseNumber: o.Case.Number, EvidenceNumber: o.Case.Evidence, Description: o.Case.Description,
			Examiner: o.Case.Examiner, Model: id.Model, Serial: id.Serial, Software: software,
			AcquisitionTime: acquired, SystemTime: acquired, Notes: "logical image of " + id.Model + " " + id.Serial,
		},
		Compression: comp, MD5: md5On, SHA1: sha1On,
		SegmentSize: int64(o.L01.SegmentGB) << 30, Threads: spec.Threads,
	}
	var w *ewf.LogicalWriter
	var err error
	if st != nil {
		if err := removeSegmentsAfter(tgt, st.Writer.Segment, func(n int) string { return ewf.LogicalSegmentName(base, n) }); err != nil {
			return nil, err
		}
		open := func(name string) (ewf.File, error) { return s.errs.watch(tgt.OpenFile(name)) }
		w, err = ewf.ResumeLogical(create, open, tgt.Truncate, base, opt, *st)
		s.files = map[string]ewf.FileHashes{}
		for _, e := range st.Entries {
			if !e.Entry.Dir {
				s.files[e.Entry.Path] = e.Hashes
			}
		}
	} else {
		w, err = ewf.NewLogicalWriter(create, base, opt)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tgt.Display(base+".L01"), err)
	}
	s.w = w
	return s, nil
}

func logicalEntry(e logical.Entry, path string) ewf.LogicalEntry {
	return ewf.LogicalEntry{Path: path, Dir: e.Dir, Size: e.Size, Created: e.Created, Modified: e.Modified,
		Accessed: e.Accessed, Changed: e.Changed, Deleted: e.Deleted}
}

// l01Sink writes an EnCase logical evidence file.
type l01Sink struct {
	tgt   target.Target
	first string
	w     *ewf.LogicalWriter
	errs  outputErrors
	files map[string]ewf.FileHashes // what was written, for Verify
}

func (s *l01Sink) AddDir(e logical.Entry, path string) error {
	return s.w.AddDir(logicalEntry(e, path))
}

func (s *l01Sink) AddFile(e logical.Entry, path string, r io.Reader) (map[string]string, error) {
	h, err := s.w.AddFile(logicalEntry(e, path), r)
	return s.added(path, h), err
}

func (s *l01Sink) Prepare(data []byte) Prepared { return Prepared{data: data, l01: s.w.Prepare(data)} }

func (s *l01Sink) AddPrepared(e logical.Entry, path string, p Prepared, readErr error) (map[string]string, error) {
	h, err := s.w.AddPrepared(logicalEntry(e, path), p.l01, readErr)
	return s.added(path, h), err
}

// added records a file's hashes for Verify and returns them keyed MD5/SHA1.
func (s *l01Sink) added(path string, h ewf.FileHashes) map[string]string {
	if s.files == nil {
		s.files = map[string]ewf.FileHashes{}
	}
	s.files[path] = h
	out := map[string]string{}
	if h.MD5 != "" {
		out["MD5"] = h.MD5
	}
	if h.SHA1 != "" {
		out["SHA1"] = h.SHA1
	}
	return out
}

func (s *l01Sink) AddError(e logical.Entry, path string, err error) {
	// The entry stays in the tree, empty, so the container shows the file existed; the report
	// and the log carry the error.
	le := logicalEntry(e, path)
	le.Size = 0
	s.w.AddFile(le, strings.NewReader(""))
}

func (s *l01Sink) Broken() error { return s.errs.Broken() }

func (s *l01Sink) Checkpoint() (ewf.LogicalState, error) { return s.w.Checkpoint() }
func (s *l01Sink) Close() error                          { return s.w.Close() }

func (s *l01Sink) Hashes() map[string]string { return s.w.StreamHashes() }

func (s *l01Sink) Verify(ctx context.Context) error {
	lr, err := ewf.OpenLogicalSet(func(name string) (ewf.ReadFile, error) { return s.tgt.Open(name) }, s.first)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.tgt.Display(s.first), err)
	}
	defer lr.Close()
	if err := lr.Verify(); err != nil {
		return err
	}
	// Every file written is in the tree with the hashes computed while copying.
	byPath := map[string]ewf.LogicalFile{}
	for _, f := range lr.Entries() {
		byPath[f.Path] = f
	}
	for p, h := range s.files {
		f, ok := byPath[p]
		if !ok {
			return fmt.Errorf("%s is missing from the L01", p)
		}
		if f.Hashes != h {
			return fmt.Errorf("%s: stored hashes %v differ from the copy's %v", p, f.Hashes, h)
		}
	}
	for k, v := range lr.StreamHashes() {
		if s.Hashes()[k] != v {
			return fmt.Errorf("stored stream %s %s differs from the written %s", k, v, s.Hashes()[k])
		}
	}
	return ctx.Err()
}

// zipSink writes a zip with a manifest, hashing the archive as it goes.
type zipSink struct {
	tgt     target.Target
	name    string
	f       target.File
	bw      *bufio.Writer
	zw      *zip.Writer
	errs    outputErrors
	md5     hash.Hash
	sha1    hash.Hash
	written int64
	members map[string]bool
}

func openZipSink(tgt target.Target, name string, md5On, sha1On, compress bool) (*zipSink, error) {
	f, err := tgt.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tgt.Display(name), err)
	}
	s := &zipSink{tgt: tgt, name: name, md5: md5.New(), sha1: sha1.New(), members: map[string]bool{}}
	s.f = watchedFile{File: f, errs: &s.errs}
	// archive/zip buffers only 4 KiB; a share wants large writes.
	s.bw = bufio.NewWriterSize(io.MultiWriter(s.f, s.md5, s.sha1, countWriter{&s.written}), 1<<20)
	var hs []digest.Name
	if md5On {
		hs = append(hs, digest.MD5)
	}
	if sha1On {
		hs = append(hs, digest.SHA1)
	}
	s.zw = zip.NewWriter(s.bw, zip.Options{Hashes: hs, Compress: compress})
	return s, nil
}

type countWriter struct{ n *int64 }

func (c countWriter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }

func zipEntry(e logical.Entry, path string) zip.Entry {
	return zip.Entry{Path: path, Dir: e.Dir, Size: e.Size, Created: e.Created, Modified: e.Modified,
		Accessed: e.Accessed, Changed: e.Changed, Deleted: e.Deleted}
}

func (s *zipSink) AddDir(e logical.Entry, path string) error { return s.zw.AddDir(zipEntry(e, path)) }

func (s *zipSink) AddFile(e logical.Entry, path string, r io.Reader) (map[string]string, error) {
	h, err := s.zw.AddFile(zipEntry(e, path), r)
	s.members[path] = true
	out := map[string]string{}
	for k, v := range h { // the manifest's lower-case names
		if n, err := digest.Parse(k); err == nil {
			out[string(n)] = v
		}
	}
	return out, err
}

func (s *zipSink) Prepare(data []byte) Prepared { return Prepared{data: data} }

func (s *zipSink) AddPrepared(e logical.Entry, path string, p Prepared, readErr error) (map[string]string, error) {
	return s.AddFile(e, path, p.reader(readErr))
}

func (s *zipSink) AddError(e logical.Entry, path string, err error) {
	s.zw.AddErrorEntry(zipEntry(e, path), err)
}

func (s *zipSink) Broken() error { return s.errs.Broken() }

func (s *zipSink) Close() error {
	err := s.zw.Close()
	if ferr := s.bw.Flush(); err == nil {
		err = ferr
	}
	if serr := s.f.Sync(); err == nil {
		err = serr
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *zipSink) Hashes() map[string]string {
	return map[string]string{"MD5": hex.EncodeToString(s.md5.Sum(nil)), "SHA1": hex.EncodeToString(s.sha1.Sum(nil))}
}

// Verify re-reads the archive: its hash equals the one computed while writing, and every member
// decompresses with a good CRC.
func (s *zipSink) Verify(ctx context.Context) error {
	f, err := s.tgt.Open(s.name)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.tgt.Display(s.name), err)
	}
	defer f.Close()
	if f.Size() != s.written {
		return fmt.Errorf("%s is %d bytes, %d were written", s.tgt.Display(s.name), f.Size(), s.written)
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return fmt.Errorf("re-read %s: %w", s.tgt.Display(s.name), err)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), s.Hashes()["MD5"]; got != want {
		return fmt.Errorf("%s: MD5 %s on re-read, %s when written", s.tgt.Display(s.name), got, want)
	}
	zr, err := azip.NewReader(f, f.Size())
	if err != nil {
		return fmt.Errorf("read %s: %w", s.tgt.Display(s.name), err)
	}
	seen := 0
	for _, m := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !s.members[m.Name] {
			continue
		}
		seen++
		rc, err := m.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		_, err = io.Copy(io.Discard, rc) // archive/zip checks the CRC at the end
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	if seen != len(s.members) {
		return fmt.Errorf("%d of %d files found in the archive", seen, len(s.members))
	}
	return nil
}
