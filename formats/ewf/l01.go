package ewf

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/evidenced/evidenced/formats/digest"
)

// An L01 (EnCase 6 logical evidence file) is an E01 whose media is the concatenation of the
// acquired files' contents (the "logical data stream"), plus an "ltree" section: a UTF-16 text
// tree naming every file and directory with its size, times, hashes and its extent in the stream.
// The chunk, table, header and hash machinery is the E01 Writer's, in its logical mode.
//
// What libewf 20140813 (Debian ewf-tools) needs, from its libewf_single_files.c and
// libewf_file_entry.c, and why the output looks as it does:
//   - the first ltree line is a single digit (the number of categories);
//   - "rec" holds "tb", the stream size: libewf takes the media size from it, not from the
//     volume section, whose chunk and sector counts are 0 as in EnCase's L01s;
//   - an entry's "be" must have exactly 1 or 3 space-separated values ("1 <offset> <size>", hex),
//     so each file is one contiguous extent of the stream;
//   - a file's extent size must equal its size, except that an empty file must have an extent of
//     1 byte (libewf refuses to read it otherwise): we store one zero byte for it;
//   - "be" at column 21 makes libewf report the EnCase 6 format; "sha" is appended after it;
//   - times are parsed as unsigned 32-bit decimals: times before 1970 or after 2106 are left empty;
//   - the line that gives an entry's child count must read "0\t<n>";
//   - the entries must be followed by an empty line.
//
// Readers' limits seen in the same version: ewfmount -f files shows an entry without children as a
// regular file, so an empty directory appears as an empty file there (ewfexport -f files and the
// library's file entry type get it right); ewfmount swaps '/' and '\' in paths, so a name holding
// '\' cannot be opened through it. Names with control characters are stored with '_' instead, as
// tab and newline delimit the tree.

// LogicalOptions configure a LogicalWriter.
type LogicalOptions struct {
	Metadata
	Compression Compression
	SegmentSize int64 // 0 = one segment
	MD5, SHA1   bool  // per-file hashes to store in the tree
	Threads           // where the chunks are encoded and the digests taken
}

// LogicalEntry describes one file or directory to store.
type LogicalEntry struct {
	Path                                 string // slash-separated; parents are created implicitly
	Dir                                  bool
	Size                                 int64
	Created, Modified, Accessed, Changed time.Time
	Deleted                              bool
}

// FileHashes are a file's digests, lower-case hex, empty when not requested.
type FileHashes struct{ MD5, SHA1 string }

// File entry flags ("opr"), as EnCase sets them.
const (
	lefDeleted = 0x00000080
	lefFolder  = 0x02000000
)

// lnode is one entry of the tree being built.
type lnode struct {
	name     string
	e        LogicalEntry
	explicit bool // added by AddDir/AddFile rather than implied by a child's path
	off      int64
	dataSize int64 // bytes in the stream: Size, or 1 for an empty file
	acquired int64
	hashes   FileHashes
	children []*lnode
}

// LogicalWriter writes an L01 segment set. It is not safe for concurrent use.
type LogicalWriter struct {
	w      *Writer
	opt    LogicalOptions
	root   *lnode
	nodes  map[string]*lnode // by cleaned path, so adding is O(depth) whatever the tree size
	order  []*lnode          // explicitly added nodes in order, for checkpoints
	count  int
	stream int64 // bytes of the logical data stream written so far
	buf    []byte
	md5    hash.Hash // per file
	sha1   hash.Hash
	smd5   hash.Hash // whole stream, for the hash and digest sections
	ssha1  hash.Hash
	closed bool
}

// NewLogicalWriter starts writing base+".L01" (then .L02, ...) through create.
func NewLogicalWriter(create CreateFunc, base string, opt LogicalOptions) (*LogicalWriter, error) {
	lw, err := newLogicalWriter(create, base, opt)
	if err != nil {
		return nil, err
	}
	if err := lw.w.openSegment(); err != nil {
		return nil, fmt.Errorf("ewf: create %s: %w", LogicalSegmentName(base, 1), err)
	}
	return lw, nil
}

func newLogicalWriter(create CreateFunc, base string, opt LogicalOptions) (*LogicalWriter, error) {
	w, err := newWriter(create, base, Options{Metadata: opt.Metadata, Compression: opt.Compression,
		SegmentSize: opt.SegmentSize, BytesPerSector: 512, SectorsPerChunk: 64, Threads: opt.Threads})
	if err != nil {
		return nil, err
	}
	w.logical = true
	w.volume = w.volumeSection()
	lw := &LogicalWriter{w: w, opt: opt, root: &lnode{e: LogicalEntry{Dir: true}, explicit: true},
		nodes: map[string]*lnode{}, buf: make([]byte, 32*w.chunkSize), smd5: md5.New()}
	if opt.MD5 {
		lw.md5 = md5.New()
	}
	if opt.SHA1 {
		lw.sha1 = sha1.New()
		lw.ssha1 = sha1.New()
	}
	lw.feedStream()
	return lw, nil
}

// feedStream has the chunk writer compute the stream hashes, each on a goroutine of its own beside
// the chunks' encoding: on the caller's goroutine they were half of its work on small files.
func (lw *LogicalWriter) feedStream() {
	lw.w.streamHashes = []hash.Hash{lw.smd5}
	if lw.ssha1 != nil {
		lw.w.streamHashes = append(lw.w.streamHashes, lw.ssha1)
	}
}

// Files returns the names of the segment files created so far.
func (lw *LogicalWriter) Files() []string { return lw.w.Files() }

// cleanPath checks a slash-separated path and makes its names storable: the ltree is
// tab- and newline-separated, so control characters in names become '_'.
func cleanPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", errors.New("empty path")
	}
	parts := strings.Split(p, "/")
	for i, c := range parts {
		if c == "" || c == "." || c == ".." {
			return "", fmt.Errorf("bad path %q", p)
		}
		if strings.ContainsFunc(c, isCtl) {
			parts[i] = strings.Map(func(r rune) rune {
				if isCtl(r) {
					return '_'
				}
				return r
			}, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// dir returns the directory node at path p, creating it and its parents implicitly.
func (lw *LogicalWriter) dir(p string) (*lnode, error) {
	if p == "" {
		return lw.root, nil
	}
	if n := lw.nodes[p]; n != nil {
		if !n.e.Dir {
			return nil, fmt.Errorf("%s is a file", p)
		}
		return n, nil
	}
	parent, name := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		parent, name = p[:i], p[i+1:]
	}
	pn, err := lw.dir(parent)
	if err != nil {
		return nil, err
	}
	n := &lnode{name: name, e: LogicalEntry{Path: p, Dir: true}}
	pn.children = append(pn.children, n)
	lw.nodes[p] = n
	lw.count++
	return n, nil
}

// add places e in the tree: a new node, or an implicit directory that e now describes.
func (lw *LogicalWriter) add(e LogicalEntry) (*lnode, error) {
	if lw.closed {
		return nil, errors.New("ewf: add after close")
	}
	if lw.w.err != nil {
		return nil, lw.w.err
	}
	p, err := cleanPath(e.Path)
	if err != nil {
		return nil, fmt.Errorf("ewf: %w", err)
	}
	e.Path = p
	if n := lw.nodes[p]; n != nil {
		if n.explicit || !e.Dir {
			return nil, fmt.Errorf("ewf: %s added twice", p)
		}
		n.e, n.explicit, n.acquired = e, true, time.Now().Unix()
		lw.order = append(lw.order, n)
		return n, nil
	}
	parent, name := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		parent, name = p[:i], p[i+1:]
	}
	pn, err := lw.dir(parent)
	if err != nil {
		return nil, fmt.Errorf("ewf: %s: %w", e.Path, err)
	}
	n := &lnode{name: name, e: e, explicit: true, acquired: time.Now().Unix()}
	pn.children = append(pn.children, n)
	lw.nodes[p] = n
	lw.count++
	lw.order = append(lw.order, n)
	return n, nil
}

// AddDir records a directory (with its times); a directory implied by a path needs no AddDir.
func (lw *LogicalWriter) AddDir(e LogicalEntry) error {
	e.Dir, e.Size = true, 0
	_, err := lw.add(e)
	return err
}

// AddFile stores e.Size bytes read from r as the file e. A short read or read error is returned,
// but the entry is kept with the bytes that were read (its size and hashes are theirs), so the
// set stays consistent and writing can go on. Bytes past e.Size are not read.
func (lw *LogicalWriter) AddFile(e LogicalEntry, r io.Reader) (FileHashes, error) {
	n, err := lw.addFile(e)
	if err != nil {
		return FileHashes{}, err
	}
	if lw.md5 != nil {
		lw.md5.Reset()
	}
	if lw.sha1 != nil {
		lw.sha1.Reset()
	}
	var got int64
	var rerr error
	for got < e.Size && rerr == nil {
		k := int(min(int64(len(lw.buf)), e.Size-got))
		var m int
		m, rerr = io.ReadFull(r, lw.buf[:k])
		if m > 0 {
			if err := lw.write(lw.buf[:m], true); err != nil {
				n.e.Size, n.dataSize = got, got
				return FileHashes{}, fmt.Errorf("ewf: %s: %w", n.e.Path, err)
			}
			got += int64(m)
		}
	}
	if lw.md5 != nil {
		n.hashes.MD5 = hex.EncodeToString(lw.md5.Sum(nil))
	}
	if lw.sha1 != nil {
		n.hashes.SHA1 = hex.EncodeToString(lw.sha1.Sum(nil))
	}
	return lw.endFile(n, got, rerr)
}

// PreparedFile is a file's content read ahead of AddPrepared, with its own digests already
// computed (by Prepare, on any goroutine).
type PreparedFile struct {
	data   []byte
	hashes FileHashes
}

// Len is the number of content bytes.
func (p PreparedFile) Len() int { return len(p.data) }

// Prepare computes the digests of a file's content that AddFile would compute while copying it.
// Unlike the writer's other methods it is safe for concurrent use (it reads only the options), so
// that several files are hashed at once while the writer stores others. data must not change until
// AddPrepared has returned.
func (lw *LogicalWriter) Prepare(data []byte) PreparedFile {
	p := PreparedFile{data: data}
	if lw.opt.MD5 {
		h := md5.New()
		digest.Write(h, data)
		p.hashes.MD5 = hex.EncodeToString(h.Sum(nil))
	}
	if lw.opt.SHA1 {
		h := sha1.New()
		digest.Write(h, data)
		p.hashes.SHA1 = hex.EncodeToString(h.Sum(nil))
	}
	return p
}

// AddPrepared stores p as the file e, as AddFile stores what it reads: p holds the bytes read
// (at most e.Size) and readErr is what stopped the read short (nil when all e.Size bytes were
// read). The entry and the error returned are AddFile's for a reader that gave those bytes and
// that error.
func (lw *LogicalWriter) AddPrepared(e LogicalEntry, p PreparedFile, readErr error) (FileHashes, error) {
	if int64(len(p.data)) > e.Size {
		return FileHashes{}, fmt.Errorf("ewf: %s: %d bytes prepared for a file of %d", e.Path, len(p.data), e.Size)
	}
	n, err := lw.addFile(e)
	if err != nil {
		return FileHashes{}, err
	}
	got := int64(len(p.data))
	if got > 0 {
		if err := lw.write(p.data, false); err != nil {
			n.e.Size, n.dataSize = 0, 0
			return FileHashes{}, fmt.Errorf("ewf: %s: %w", n.e.Path, err)
		}
	}
	if got < e.Size && readErr == nil {
		readErr = io.ErrUnexpectedEOF
	}
	n.hashes = p.hashes
	return lw.endFile(n, got, readErr)
}

// addFile checks e and places it in the tree at the current end of the stream.
func (lw *LogicalWriter) addFile(e LogicalEntry) (*lnode, error) {
	if e.Dir {
		return nil, errors.New("ewf: AddFile with a directory entry")
	}
	if e.Size < 0 {
		return nil, fmt.Errorf("ewf: %s: negative size", e.Path)
	}
	n, err := lw.add(e)
	if err != nil {
		return nil, err
	}
	n.off = lw.stream
	return n, nil
}

// endFile records that got bytes of n are in the stream (an empty file gets its 1-byte extent)
// and turns a read error into the file's error; n.hashes are set.
func (lw *LogicalWriter) endFile(n *lnode, got int64, rerr error) (FileHashes, error) {
	want := n.e.Size
	n.e.Size, n.dataSize = got, got
	if got == 0 {
		// libewf reads an empty file only with a 1-byte extent.
		lw.buf[0] = 0
		if err := lw.write(lw.buf[:1], false); err != nil {
			return FileHashes{}, fmt.Errorf("ewf: %s: %w", n.e.Path, err)
		}
		n.dataSize = 1
	}
	if rerr != nil {
		if rerr == io.ErrUnexpectedEOF || rerr == io.EOF {
			rerr = io.ErrUnexpectedEOF
		}
		return n.hashes, fmt.Errorf("ewf: %s: read %d of %d bytes: %w", n.e.Path, got, want, rerr)
	}
	return n.hashes, nil
}

// write appends p to the stream, hashing it for the file when file is set (the chunk writer hashes
// the stream). The file's digests run beside the copy into chunks: done one after the other they
// made L01 writing 4 times slower than E01 writing. Small writes are hashed inline.
func (lw *LogicalWriter) write(p []byte, file bool) error {
	var hs [2]hash.Hash
	if file {
		hs = [2]hash.Hash{lw.md5, lw.sha1}
	}
	var wg sync.WaitGroup
	for _, h := range hs {
		switch {
		case h == nil:
		case len(p) < 4*lw.w.chunkSize:
			digest.Write(h, p)
		default:
			wg.Add(1)
			lw.w.opt.start(func() {
				defer wg.Done()
				digest.Write(h, p)
			})
		}
	}
	_, err := lw.w.Write(p)
	wg.Wait()
	if err != nil {
		return err
	}
	lw.stream += int64(len(p))
	return nil
}

// Close writes the last chunk, the ltree, the stream's hashes and closes the last segment.
func (lw *LogicalWriter) Close() error {
	if lw.closed {
		return lw.w.err
	}
	lw.closed = true
	if lw.w.err == nil {
		// The last chunks' stream hashes are complete once they are written.
		if err := lw.w.flush(); err != nil {
			return fmt.Errorf("ewf: close L01: %w", err) // as the writer's Close returns it
		}
		lw.w.extra = []namedSection{lw.ltreeSection()}
		lw.w.SetHash("MD5", lw.smd5.Sum(nil))
		if lw.ssha1 != nil {
			lw.w.SetHash("SHA1", lw.ssha1.Sum(nil))
		}
	}
	if err := lw.w.Close(); err != nil {
		return fmt.Errorf("ewf: close L01: %w", err)
	}
	return nil
}

// StreamHashes are the digests of the logical data stream (what the hash and digest sections
// hold and ewfverify checks), lower-case hex keyed MD5 and SHA1; complete after Close.
func (lw *LogicalWriter) StreamHashes() map[string]string {
	out := map[string]string{"MD5": hex.EncodeToString(lw.smd5.Sum(nil))}
	if lw.ssha1 != nil {
		out["SHA1"] = hex.EncodeToString(lw.ssha1.Sum(nil))
	}
	return out
}

// ltreeTypes are the EnCase 6 entry columns ("be" at index 21 is what makes libewf detect
// EnCase 6) plus EnCase 7's "sha" for the SHA1.
const ltreeTypes = "p\tn\tid\topr\tsrc\tsub\tcid\tjq\tcr\tac\twr\tmo\tdl\taq\tha\tls\tdu\tlo\tpo\tmid\tcfi\tbe\tpm\tlpt\tsha"

func ltreeTime(t time.Time) string { return string(appendLtreeTime(nil, t)) }

// appendLtreeTime appends t as the ltree's times are written: Unix seconds, nothing for a zero
// time or one that does not fit.
func appendLtreeTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	s := t.Unix()
	if s <= 0 || s > math.MaxUint32 {
		return b
	}
	return strconv.AppendInt(b, s, 10)
}

// ltreePiece is about how much ltree text renderLtree hands on at once.
const ltreePiece = 32 << 10

// renderLtree renders the tree, depth first, in insertion order, handing the text to emit in
// pieces of whole lines (about ltreePiece bytes; emit must not keep them). aq stands for a zero
// acquisition time; the same tree and aq render the same text.
func (lw *LogicalWriter) renderLtree(aq time.Time, emit func(text []byte)) {
	var b bytes.Buffer
	b.Grow(2 * ltreePiece)
	m := lw.opt.Metadata
	if !m.AcquisitionTime.IsZero() {
		aq = m.AcquisitionTime
	}
	tb := strconv.FormatInt(lw.stream, 10)
	b.WriteString("5\nrec\ntb\n" + tb + "\n\n")
	// No permission groups or subjects; one source: the evidence the files were copied from.
	b.WriteString("perm\n0\t1\np\tn\ts\tpr\tnta\tnti\n0\t0\n1\t\t\t\t\t\n\n")
	b.WriteString("srce\n1\t1\np\tn\tid\tev\ttb\tlo\tpo\tah\tgu\taq\n0\t1\n\t\t\t\t\t-1\t-1\t\t\t\n0\t0\n\t" +
		clean(m.Description) + "\t1\t" + clean(m.EvidenceNumber) + "\t" + tb + "\t-1\t-1\t\t0\t" + ltreeTime(aq) + "\n\n")
	b.WriteString("sub\n0\t1\np\tn\tid\tnu\tco\tgu\n0\t0\n\t\t\t\t1\t\n\n")
	b.WriteString("entry\n" + strconv.Itoa(max(lw.count, 1)) + "\t1\n" + ltreeTypes + "\n")
	id := 0
	var walk func(n *lnode)
	walk = func(n *lnode) {
		b.WriteString("0\t")
		b.WriteString(strconv.Itoa(len(n.children)))
		b.WriteByte('\n')
		lw.entryLine(&b, n, id)
		id++
		if b.Len() >= ltreePiece {
			emit(b.Bytes())
			b.Reset()
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(lw.root)
	b.WriteString("\n")
	emit(b.Bytes())
}

// ltreeSection is the ltree section of the finished tree. Its text is rendered twice, once for the
// header's MD5 and size and once as it is written, instead of held: text and UTF-16 together were
// 30 MB for the 2 GiB corpus's 52,760 entries, about 600 MB for a million files, at the end of a
// task, when four may end at once.
func (lw *LogicalWriter) ltreeSection() namedSection {
	aq := time.Now()
	return ltreeSection(func(emit func([]byte)) { lw.renderLtree(aq, emit) })
}

// entryLine appends n's line of the entry table, the columns of ltreeTypes. It appends to b's
// buffer field by field rather than building the fields' strings: a tree is rendered twice at
// Close (ltreeSection), and per-entry strings were 200 bytes of garbage an entry each time.
func (lw *LogicalWriter) entryLine(b *bytes.Buffer, n *lnode, id int) {
	if n == lw.root { // "1" in the first column, the others empty
		b.WriteByte('1')
		for range strings.Count(ltreeTypes, "\t") {
			b.WriteByte('\t')
		}
		b.WriteByte('\n')
		return
	}
	e := n.e
	var flags uint32
	if e.Dir {
		flags |= lefFolder
	}
	if e.Deleted {
		flags |= lefDeleted
	}
	l := b.AvailableBuffer()
	tab := func(v string) { l = append(append(l, '\t'), v...) }
	tabTime := func(t time.Time) { l = appendLtreeTime(append(l, '\t'), t) }
	if e.Dir {
		l = append(l, '1') // p
	}
	tab(n.name)
	l = strconv.AppendInt(append(l, '\t'), int64(id), 10)
	l = strconv.AppendUint(append(l, '\t'), uint64(flags), 10)
	tab("1") // src
	tab("")  // sub
	tab("")  // cid
	tab("")  // jq
	tabTime(e.Created)
	tabTime(e.Accessed)
	tabTime(e.Modified)
	tabTime(e.Changed)
	tab("") // dl
	l = append(l, '\t')
	if n.explicit {
		l = strconv.AppendInt(l, n.acquired, 10) // aq
	}
	l = append(l, '\t')
	if !e.Dir {
		l = appendOr(l, n.hashes.MD5, 32) // ha; zeros: EnCase's "not hashed"
	}
	l = append(l, '\t')
	if !e.Dir {
		l = strconv.AppendInt(l, e.Size, 10) // ls
	}
	tab("")   // du
	tab("-1") // lo
	tab("-1") // po
	tab("")   // mid
	tab("")   // cfi
	l = append(l, '\t')
	if !e.Dir {
		l = append(l, "1 "...) // be: one extent at its offset in the stream, its size
		l = strconv.AppendInt(l, n.off, 16)
		l = strconv.AppendInt(append(l, ' '), n.dataSize, 16)
	}
	tab("-1") // pm
	tab("")   // lpt
	l = append(l, '\t')
	if !e.Dir {
		l = appendOr(l, n.hashes.SHA1, 40) // sha
	}
	l = append(l, '\n')
	b.Write(l)
}

// appendOr appends v, or n zeros when v is empty.
func appendOr(b []byte, v string, n int) []byte {
	if v != "" {
		return append(b, v...)
	}
	for range n {
		b = append(b, '0')
	}
	return b
}

const ltreeHdrSize = 48

// ltreeSection is an ltree section: a header with the MD5 and size of the text, then the text as
// UTF-16 little-endian without byte order mark. render hands the text to its argument in pieces
// that end on whole characters; it is called twice (header, then body) and must give the same
// text both times.
func ltreeSection(render func(emit func([]byte))) namedSection {
	h := md5.New()
	var n int64
	var u []byte
	render(func(text []byte) {
		u = appendUTF16LE(u[:0], text)
		h.Write(u)
		n += int64(len(u))
	})
	hdr := make([]byte, ltreeHdrSize)
	h.Sum(hdr[:0])
	binary.LittleEndian.PutUint32(hdr[16:], uint32(n))
	binary.LittleEndian.PutUint32(hdr[24:], adler32.Checksum(hdr))
	return namedSection{typ: "ltree", size: ltreeHdrSize + n, emit: func(write func([]byte) error) error {
		if err := write(hdr); err != nil {
			return err
		}
		var err error
		render(func(text []byte) {
			if err == nil {
				u = appendUTF16LE(u[:0], text)
				err = write(u)
			}
		})
		return err
	}}
}

// appendUTF16LE appends UTF-8 text as UTF-16 little-endian, rune by rune (bytes that are not UTF-8
// become U+FFFD, as a []rune conversion makes them): utf16.Encode([]rune(text)) made two copies of
// a tree's text, 32 bytes a character between them. UTF-16 takes at most two bytes per byte of
// UTF-8.
func appendUTF16LE(b, text []byte) []byte {
	b = slices.Grow(b, 2*len(text))
	for len(text) > 0 {
		r, n := utf8.DecodeRune(text)
		text = text[n:]
		if r < 0x10000 {
			b = binary.LittleEndian.AppendUint16(b, uint16(r))
			continue
		}
		r1, r2 := utf16.EncodeRune(r)
		b = binary.LittleEndian.AppendUint16(b, uint16(r1))
		b = binary.LittleEndian.AppendUint16(b, uint16(r2))
	}
	return b
}
