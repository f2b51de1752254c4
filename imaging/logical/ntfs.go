package logical

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	ntfsparser "www.velocidex.com/golang/go-ntfs/parser"
)

// NTFS is read with Velocidex's go-ntfs, the parser behind Velociraptor. The tree is walked
// through the $I30 directory indexes, like a mounted view; each index entry is checked against
// the MFT record it points to, so stale entries left in unused index blocks are not reported.
//
// Deleted files come from the MFT: a record no longer in use keeps its $FILE_NAME (with the
// parent directory's reference) and its $DATA runs until it is reused. Such a record is listed,
// Deleted, under its parent when that parent is walked and is still the same directory (the
// sequence number in the parent reference matches; a deleted parent's has moved on by one).
// Deleted records whose parent no longer exists are not reported (TSK's $OrphanFiles).

const (
	ntfsRootMFT   = 5
	ntfsFirstUser = 24   // MFT records 0-23 are metafiles or reserved for them
	ntfsAttrData  = 0x80 // $DATA
	ntfsAttrVName = 0x60 // $VOLUME_NAME
	ntfsAttrDir   = 0x10 // FILE_ATTRIBUTE_DIRECTORY, absent from $STANDARD_INFORMATION flags
)

type ntfsVol struct {
	ctx *ntfsparser.NTFSContext
}

// maxMFTRecords bounds the deleted-record scan on a corrupt $MFT size.
const maxMFTRecords = 1 << 24

func openNTFS(r *io.SectionReader) (*ntfsVol, error) {
	ctx, err := ntfsparser.GetNTFSContext(r, 0)
	if err != nil {
		return nil, fmt.Errorf("ntfs: open: %w", err)
	}
	if _, err := ctx.GetMFT(ntfsRootMFT); err != nil {
		return nil, fmt.Errorf("ntfs: open root directory: %w", err)
	}
	return &ntfsVol{ctx: ctx}, nil
}

// ntfsLabel reads $Volume's $VOLUME_NAME; "" when absent or unreadable.
func ntfsLabel(r *io.SectionReader) (label string) {
	defer func() {
		if recover() != nil {
			label = ""
		}
	}()
	ctx, err := ntfsparser.GetNTFSContext(r, 0)
	if err != nil {
		return ""
	}
	vol, err := ctx.GetMFT(3)
	if err != nil {
		return ""
	}
	attr, err := vol.GetAttribute(ctx, ntfsAttrVName, -1, "")
	if err != nil {
		return ""
	}
	n := min(attr.DataSize(), 256)
	b := make([]byte, n)
	n2, _ := attr.Data(ctx).ReadAt(b, 0)
	return utf16Name(append(b[:n2:n2], 0, 0))
}

func (v *ntfsVol) Walk(fn func(Entry) error, onErr func(string, error)) (err error) {
	defer recoverTo(&err, "ntfs: walk")
	w := &ntfsWalk{v: v, fn: fn, onErr: onErr, seen: map[uint64]bool{ntfsRootMFT: true}}
	w.deleted, err = v.deletedRecords()
	if err != nil {
		onErr("", err) // the live tree can still be walked
	}
	return w.dir(ntfsRootMFT, "", false, 0)
}

type ntfsWalk struct {
	v       *ntfsVol
	fn      func(Entry) error
	onErr   func(string, error)
	seen    map[uint64]bool
	deleted map[uint64][]ntfsChild // by parent MFT number
}

type ntfsChild struct {
	name      string
	ref       uint64
	parentSeq uint16 // deleted only: sequence number in the $FILE_NAME's parent reference
	deleted   bool
}

// deletedRecords scans the MFT for records not in use that still name a parent directory.
func (v *ntfsVol) deletedRecords() (out map[uint64][]ntfsChild, err error) {
	defer recoverTo(&err, "ntfs: scan MFT for deleted records")
	mft, err := v.ctx.GetMFT(0)
	if err != nil {
		return nil, fmt.Errorf("ntfs: read $MFT record: %w", err)
	}
	var size int64
	for _, a := range mft.EnumerateAttributes(v.ctx) {
		if a.Type().Value == ntfsAttrData && a.Name() == "" && (a.IsResident() || a.Runlist_vcn_start() == 0) {
			size = a.DataSize()
			break
		}
	}
	n := min(size/v.ctx.GetRecordSize(), maxMFTRecords)
	out = map[uint64][]ntfsChild{}
	for id := int64(ntfsFirstUser); id < n; id++ {
		m, err := v.ctx.GetMFT(id)
		if err != nil || m.Flags().IsSet("ALLOCATED") || m.Base_record_reference() != 0 {
			continue // never used, in use, or an extension of another record
		}
		for _, f := range m.FileName(v.ctx) {
			if f.NameType().Name == "DOS" || f.Name() == "" {
				continue
			}
			p := f.MftReference()
			out[p] = append(out[p], ntfsChild{name: f.Name(), ref: uint64(id), parentSeq: f.Seq_num(), deleted: true})
		}
	}
	return out, nil
}

func (v *ntfsVol) children(dirID uint64) (out []ntfsChild, err error) {
	defer recoverTo(&err, fmt.Sprintf("ntfs: directory %d", dirID))
	dir, err := v.ctx.GetMFT(int64(dirID))
	if err != nil {
		return nil, fmt.Errorf("ntfs: read directory record %d: %w", dirID, err)
	}
	seen := map[ntfsChild]bool{}
	for _, rec := range dir.Dir(v.ctx) {
		ref := rec.MftReference()
		fnm := rec.File()
		if ref == 0 || ref == dirID || fnm.MftReference() != dirID {
			continue
		}
		if fnm.NameType().Name == "DOS" {
			continue // the 8.3 alias of a name that is listed under its long form too
		}
		c := ntfsChild{name: fnm.Name(), ref: ref}
		if c.name == "" || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// entry builds the Entry for MFT record ref, verifying that the record is in use (or, for a
// deleted child, not in use) and really carries this name under this parent.
func (v *ntfsVol) entry(ref, parent uint64, name, p string, deleted bool) (e Entry, err error) {
	defer recoverTo(&err, "ntfs: "+p)
	m, err := v.ctx.GetMFT(int64(ref))
	if err != nil {
		return Entry{}, fmt.Errorf("ntfs: read MFT record %d: %w", ref, err)
	}
	if m.Flags().IsSet("ALLOCATED") == deleted {
		return Entry{}, errStale
	}
	linked := false
	for _, f := range m.FileName(v.ctx) {
		if f.MftReference() == parent && f.Name() == name {
			linked = true
			break
		}
	}
	if !linked {
		return Entry{}, errStale
	}
	e = Entry{Path: p, ID: ref, Dir: m.Flags().IsSet("DIRECTORY"), Deleted: deleted}
	if si, err := m.StandardInformation(v.ctx); err == nil {
		e.Created = ntfsTime(si.Create_time().Time)
		e.Modified = ntfsTime(si.File_altered_time().Time)
		e.Changed = ntfsTime(si.Mft_altered_time().Time)
		e.Accessed = ntfsTime(si.File_accessed_time().Time)
		e.Attributes = uint32(si.Flags().Value)
	}
	if e.Dir {
		e.Attributes |= ntfsAttrDir
		e.Mode = fs.ModeDir
		return e, nil
	}
	for _, a := range m.EnumerateAttributes(v.ctx) {
		if a.Type().Value == ntfsAttrData && a.Name() == "" && (a.IsResident() || a.Runlist_vcn_start() == 0) {
			e.Size = a.DataSize()
			break
		}
	}
	return e, nil
}

var errStale = errors.New("stale index entry")

// ntfsTime maps the zero FILETIME (1601) to Go's zero time, the "no such time" of Entry.
func ntfsTime(t time.Time) time.Time {
	if t.Year() <= 1601 {
		return time.Time{}
	}
	return t.UTC()
}

// dir walks directory dirID. A live directory's children come from its index plus the deleted
// records naming it; a deleted directory's only from the deleted records.
func (w *ntfsWalk) dir(dirID uint64, dir string, dirDeleted bool, dirSeq uint16) error {
	var kids []ntfsChild
	if !dirDeleted {
		var err error
		kids, err = w.v.children(dirID)
		if err != nil {
			w.onErr(dir, err)
		}
		if m, err := w.v.ctx.GetMFT(int64(dirID)); err == nil {
			dirSeq = m.Sequence_value()
		}
	}
	for _, c := range w.deleted[dirID] {
		// Freeing a record increments its sequence number: children of a deleted directory
		// carry the number it had before.
		if c.parentSeq == dirSeq || dirDeleted && c.parentSeq == dirSeq-1 {
			kids = append(kids, c)
		}
	}
	sort.SliceStable(kids, func(i, j int) bool {
		if kids[i].name != kids[j].name {
			return kids[i].name < kids[j].name
		}
		return !kids[i].deleted && kids[j].deleted
	})
	for _, c := range kids {
		// The metafiles ($MFT, $Bitmap, ..., $Extend) are file system internals, not evidence files.
		if dirID == ntfsRootMFT && c.ref < ntfsFirstUser && strings.HasPrefix(c.name, "$") {
			continue
		}
		p := childPath("ntfs", dir, c.name, w.onErr)
		e, err := w.v.entry(c.ref, dirID, c.name, p, c.deleted)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			w.onErr(p, err)
			continue
		}
		if err := w.fn(e); err != nil {
			return err
		}
		if !e.Dir {
			continue
		}
		if w.seen[c.ref] {
			w.onErr(p, fmt.Errorf("ntfs: directory loop at MFT record %d", c.ref))
			continue
		}
		w.seen[c.ref] = true
		seq := uint16(0)
		if c.deleted {
			if m, err := w.v.ctx.GetMFT(int64(c.ref)); err == nil {
				seq = m.Sequence_value()
			}
		}
		if err := w.dir(c.ref, p, c.deleted, seq); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the default (unnamed) $DATA stream; alternate data streams are not exported.
func (v *ntfsVol) Open(e Entry) (rc io.ReadCloser, err error) {
	defer recoverTo(&err, "ntfs: open "+e.Path)
	if rc, done, err := openTrivial("ntfs", e); done {
		return rc, err
	}
	m, err := v.ctx.GetMFT(int64(e.ID))
	if err != nil {
		return nil, fmt.Errorf("ntfs: open %s: MFT record %d: %w", e.Path, e.ID, err)
	}
	s, err := ntfsparser.OpenStream(v.ctx, m, ntfsAttrData, ntfsparser.WILDCARD_STREAM_ID, "")
	if err != nil {
		return nil, fmt.Errorf("ntfs: open %s: $DATA: %w", e.Path, err)
	}
	return io.NopCloser(&atReader{ra: s, size: e.Size, name: e.Path, what: "ntfs"}), nil
}

// atReader reads [0, size) of a ReaderAt sequentially, recovering panics of the parser below,
// and treats a read that makes no progress as an error rather than spinning.
type atReader struct {
	ra         io.ReaderAt
	off, size  int64
	name, what string
	stalls     int
}

func (a *atReader) Read(p []byte) (n int, err error) {
	defer recoverTo(&err, a.what+": read "+a.name)
	if a.off >= a.size {
		return 0, io.EOF
	}
	if int64(len(p)) > a.size-a.off {
		p = p[:a.size-a.off]
	}
	n, err = a.ra.ReadAt(p, a.off)
	a.off += int64(n)
	if n > 0 {
		a.stalls = 0
		if err == io.EOF && a.off < a.size {
			err = nil // try again at the new offset
		}
		if a.off >= a.size {
			err = nil
		}
		return n, err
	}
	if err == nil || err == io.EOF {
		if a.stalls++; a.stalls > 3 || err == io.EOF {
			return 0, fmt.Errorf("%s: read %s at %d of %d: %w", a.what, a.name, a.off, a.size, io.ErrUnexpectedEOF)
		}
	}
	return 0, err
}
