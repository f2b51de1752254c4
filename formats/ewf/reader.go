package ewf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/klauspost/compress/zlib"
)

// ReadFile is one segment file opened for reading.
type ReadFile interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// OpenFunc opens a segment file by name.
type OpenFunc func(name string) (ReadFile, error)

type chunkLoc struct {
	seg  int32
	comp bool
	off  int64
	size int64
}

// Reader gives random access to the media stored in a segment set.
type Reader struct {
	files     []ReadFile
	chunks    []chunkLoc
	chunkSize int64
	size      int64
	meta      Metadata
	hashes    map[string]string
	errs      []SectorRange
	damage    []error // corrupt sections the media does not need (error2, hash, digest)
	ltree     []byte  // body of the ltree section of an L01 set

	mu    sync.Mutex
	cache [4]struct {
		idx  int64
		data []byte
	}
	next int
	raw  []byte
	zr   io.ReadCloser
}

type osReadFile struct{ *os.File }

func (f osReadFile) Size() int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// OpenFile opens a local segment set by the path of its first segment.
func OpenFile(path string) (*Reader, error) {
	return Open(func(name string) (ReadFile, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return osReadFile{f}, nil
	}, path)
}

// Open opens the segment set whose first segment is first ("name.E01"); the following
// segments are found by libewf naming.
func Open(open OpenFunc, first string) (*Reader, error) { return openSet(open, first, false) }

// openSet reads an E01 set, or with logical an L01 set, whose media is the logical data stream
// (its size is the ltree's "tb": L01 volume sections carry no sector count).
func openSet(open OpenFunc, first string, logical bool) (_ *Reader, err error) {
	name, err := segmentNamer(first, logical)
	if err != nil {
		return nil, err
	}
	s := &setScan{r: &Reader{hashes: map[string]string{}}, logical: logical, sig: evfSignature}
	if logical {
		s.sig = lvfSignature
	}
	defer func() {
		if err != nil {
			s.r.Close()
		}
	}()
	for seg := 1; ; seg++ {
		f, err := open(name(seg))
		if err != nil {
			if seg > 1 {
				break // past the last segment
			}
			return nil, err
		}
		s.r.files = append(s.r.files, f)
		done, err := s.segment(f, name(seg), seg)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	return s.r, nil
}

// segmentNamer checks the first segment's name and returns the name of segment n (1-based),
// keeping a lower-case set lower-case.
func segmentNamer(first string, logical bool) (func(n int) string, error) {
	if len(first) < 4 || first[len(first)-4] != '.' {
		return nil, fmt.Errorf("ewf: %q is not a segment file name", first)
	}
	base := first[:len(first)-4]
	segName := SegmentName
	if logical {
		segName = LogicalSegmentName
	}
	lower := first[len(first)-3] == 'e' || first[len(first)-3] == 'l'
	return func(n int) string {
		if n == 1 {
			return first
		}
		name := segName(base, n)
		if lower {
			name = base + "." + strings.ToLower(name[len(base)+1:])
		}
		return name
	}, nil
}

// setScan holds what the sections of a segment set have said so far while openSet walks them.
type setScan struct {
	r          *Reader
	logical    bool
	sig        []byte // the segment files' signature
	headerSeen bool   // a header2 (or header) was parsed: later "header" sections are ignored

	// From the first volume (disk, data) section.
	volChunks, spc, bps uint32
	sectors             uint64
}

// section is one section of a segment file, as its descriptor describes it.
type section struct {
	typ        string
	off, next  int64 // the descriptor's offset and the next descriptor's
	size       int64 // descriptor and body
	file       ReadFile
	fileName   string
	fileSize   int64
	sectorsEnd int64 // end of this segment's last "sectors" section (0: none yet)
}

// body reads the section's bytes after its descriptor, bounded by the file and a sanity limit.
func (sc section) body() ([]byte, error) {
	if sc.size < descSize || sc.off+sc.size > sc.fileSize || sc.size > 1<<28 {
		return nil, fmt.Errorf("ewf: %s: bad %s section size %d", sc.fileName, sc.typ, sc.size)
	}
	b := make([]byte, sc.size-descSize)
	if _, err := sc.file.ReadAt(b, sc.off+descSize); err != nil {
		return nil, fmt.Errorf("ewf: %s: %s section at %d: %w", sc.fileName, sc.typ, sc.off, err)
	}
	return b, nil
}

// segment checks segment file seg's header and walks its section chain; done is true when the
// chain ends in "done" (the last segment).
func (s *setScan) segment(f ReadFile, name string, seg int) (done bool, err error) {
	var fh [fileHdrSize]byte
	if _, err := f.ReadAt(fh[:], 0); err != nil || !bytes.Equal(fh[:8], s.sig) {
		return false, fmt.Errorf("ewf: %s: not an EWF segment", name)
	}
	if n := binary.LittleEndian.Uint16(fh[9:]); int(n) != seg {
		return false, fmt.Errorf("ewf: %s: segment number %d, want %d", name, n, seg)
	}
	sc := section{file: f, fileName: name, fileSize: f.Size()}
	last := ""
	for off := int64(fileHdrSize); off+descSize <= sc.fileSize; off = sc.next {
		if err := sc.readDescriptor(off); err != nil {
			return false, err
		}
		last = sc.typ
		if err := s.section(sc, seg); err != nil {
			return false, err
		}
		if sc.typ == "sectors" {
			sc.sectorsEnd = sc.off + sc.size
		}
		if sc.typ == "next" || sc.typ == "done" || sc.next <= off {
			break
		}
	}
	return last == "done", nil
}

// readDescriptor reads and checks the section descriptor at off into sc.
func (sc *section) readDescriptor(off int64) error {
	var d [descSize]byte
	if _, err := sc.file.ReadAt(d[:], off); err != nil {
		return fmt.Errorf("ewf: %s: section descriptor at %d: %w", sc.fileName, off, err)
	}
	if binary.LittleEndian.Uint32(d[72:]) != adler32.Checksum(d[:72]) {
		return fmt.Errorf("ewf: %s: bad section descriptor checksum at %d", sc.fileName, off)
	}
	sc.typ = string(bytes.TrimRight(d[:16], "\x00"))
	sc.off = off
	sc.next = int64(binary.LittleEndian.Uint64(d[16:]))
	sc.size = int64(binary.LittleEndian.Uint64(d[24:]))
	return nil
}

// section takes in one section of segment seg. The sections the media is read through (volume,
// table, ltree) fail the open when bad; the ones that only describe it (error2, hash, digest) are
// recorded as damage, which Damage reports to a verifier.
func (s *setScan) section(sc section, seg int) error {
	switch sc.typ {
	case "header2", "header":
		if s.headerSeen && sc.typ == "header" {
			return nil
		}
		b, err := sc.body()
		if err != nil {
			return err
		}
		if m, ok := parseHeader(b, sc.typ == "header2"); ok {
			s.r.meta = m
			s.headerSeen = true
		}
	case "volume", "disk", "data":
		b, err := sc.body()
		if err != nil {
			return err
		}
		s.volume(b)
	case "ltree":
		if !s.logical {
			return nil
		}
		b, err := sc.body()
		if err != nil {
			return err
		}
		s.r.ltree = b
	case "table":
		b, err := sc.body()
		if err != nil {
			return err
		}
		if err := s.r.addTable(b, int32(seg-1), sc.off, sc.sectorsEnd); err != nil {
			return fmt.Errorf("ewf: %s: %w", sc.fileName, err)
		}
	case "error2", "hash", "digest":
		if err := s.described(sc); err != nil {
			s.r.damage = append(s.r.damage, fmt.Errorf("ewf: %s: %s section at %d: %w", sc.fileName, sc.typ, sc.off, err))
		}
	}
	return nil
}

// volume takes the geometry from the first volume section (later ones repeat it).
func (s *setScan) volume(b []byte) {
	if len(b) < 24 || s.spc != 0 {
		return
	}
	s.volChunks = binary.LittleEndian.Uint32(b[4:])
	s.spc = binary.LittleEndian.Uint32(b[8:])
	s.bps = binary.LittleEndian.Uint32(b[12:])
	if len(b) >= volumeSize {
		s.sectors = binary.LittleEndian.Uint64(b[16:])
	} else {
		s.sectors = uint64(binary.LittleEndian.Uint32(b[16:]))
	}
}

// described reads an error2, hash or digest section into the reader; an error says it is damaged.
func (s *setScan) described(sc section) error {
	b, err := sc.body()
	if err != nil {
		return err
	}
	switch sc.typ {
	case "error2":
		errs, err := parseError2(b)
		if err != nil {
			return err
		}
		s.r.errs = append(s.r.errs, errs...)
	case "hash":
		if err := checkSum(b, 32); err != nil {
			return err
		}
		if !allZero(b[:16]) {
			s.r.hashes["MD5"] = hex.EncodeToString(b[:16])
		}
	case "digest":
		if err := checkSum(b, 76); err != nil {
			return err
		}
		if !allZero(b[:16]) {
			s.r.hashes["MD5"] = hex.EncodeToString(b[:16])
		}
		if !allZero(b[16:36]) {
			s.r.hashes["SHA1"] = hex.EncodeToString(b[16:36])
		}
	}
	return nil
}

// checkSum checks the Adler-32 of b[:n] stored at b[n:n+4].
func checkSum(b []byte, n int) error {
	if len(b) < n+4 {
		return fmt.Errorf("%d bytes, want at least %d", len(b), n+4)
	}
	if binary.LittleEndian.Uint32(b[n:]) != adler32.Checksum(b[:n]) {
		return errors.New("checksum mismatch")
	}
	return nil
}

// parseError2 reads the sector ranges of an error2 section body: a 520-byte header (count,
// padding, checksum), then 8 bytes a range and the entries' checksum.
func parseError2(b []byte) ([]SectorRange, error) {
	if err := checkSum(b, error2HdrSize-4); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	n := int64(binary.LittleEndian.Uint32(b))
	if n == 0 {
		return nil, nil
	}
	end := error2HdrSize + 8*n
	if end+4 > int64(len(b)) {
		return nil, fmt.Errorf("%d entries do not fit in %d bytes", n, len(b))
	}
	if err := checkSum(b[error2HdrSize:], int(8*n)); err != nil {
		return nil, fmt.Errorf("entries: %w", err)
	}
	errs := make([]SectorRange, n)
	for i := range errs {
		e := b[error2HdrSize+8*i:]
		errs[i] = SectorRange{int64(binary.LittleEndian.Uint32(e)), int64(binary.LittleEndian.Uint32(e[4:]))}
	}
	return errs, nil
}

// finish checks the geometry the volume section gave and that the tables cover the media.
func (s *setScan) finish() error {
	r := s.r
	if s.spc == 0 || s.bps == 0 {
		return errors.New("ewf: no volume section")
	}
	// Bounds on hostile values: a chunk is allocated whole, and the media size must not overflow.
	if s.bps > 1<<16 || uint64(s.spc)*uint64(s.bps) > maxChunkSize || s.sectors > 1<<62/uint64(s.bps) {
		return fmt.Errorf("ewf: volume section: impossible geometry (%d sectors of %d bytes, %d per chunk)", s.sectors, s.bps, s.spc)
	}
	r.chunkSize = int64(s.spc) * int64(s.bps)
	r.size = int64(s.sectors) * int64(s.bps)
	if s.logical {
		tb, err := ltreeTotalBytes(r.ltree)
		if err != nil {
			return err
		}
		if tb < 0 {
			return fmt.Errorf("ewf: ltree: negative stream size %d", tb)
		}
		r.size = tb
	}
	if s.volChunks != 0 && int(s.volChunks) < len(r.chunks) {
		r.chunks = r.chunks[:s.volChunks]
	}
	if need := (r.size + r.chunkSize - 1) / r.chunkSize; int64(len(r.chunks)) < need {
		return fmt.Errorf("ewf: %d chunks stored, %d needed (missing segment?)", len(r.chunks), need)
	}
	return nil
}

// maxChunkSize bounds the chunk size a reader accepts (libewf writes 32 KiB; EnCase at most a few MiB).
const maxChunkSize = 64 << 20

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (r *Reader) addTable(b []byte, seg int32, tableOff, sectorsEnd int64) error {
	if len(b) < tableHdrSize {
		return errors.New("short table")
	}
	n := int(binary.LittleEndian.Uint32(b))
	base := int64(binary.LittleEndian.Uint64(b[8:]))
	if len(b) < tableHdrSize+4*n {
		return errors.New("short table entries")
	}
	end := tableOff
	if sectorsEnd > 0 && sectorsEnd <= tableOff {
		end = sectorsEnd
	}
	start := len(r.chunks)
	for i := 0; i < n; i++ {
		v := binary.LittleEndian.Uint32(b[tableHdrSize+4*i:])
		r.chunks = append(r.chunks, chunkLoc{seg: seg, comp: v&compressedBit != 0, off: base + int64(v&^compressedBit)})
	}
	for i := start; i < len(r.chunks); i++ {
		e := end
		if i+1 < len(r.chunks) {
			e = r.chunks[i+1].off
		}
		r.chunks[i].size = e - r.chunks[i].off
		if r.chunks[i].size <= 0 || r.chunks[i].size > 1<<26 {
			return fmt.Errorf("bad chunk size %d", r.chunks[i].size)
		}
	}
	return nil
}

func parseHeader(b []byte, utf16le bool) (Metadata, bool) {
	var m Metadata
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return m, false
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return m, false
	}
	text := string(raw)
	if utf16le {
		if len(raw) >= 2 && raw[0] == 0xff && raw[1] == 0xfe {
			raw = raw[2:]
		}
		u := make([]uint16, len(raw)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		text = string(utf16.Decode(u))
	}
	lines := strings.Split(strings.ReplaceAll(text, "\r", ""), "\n")
	if len(lines) < 4 {
		return m, false
	}
	keys := strings.Split(lines[2], "\t")
	vals := strings.Split(lines[3], "\t")
	for i, k := range keys {
		if i >= len(vals) {
			break
		}
		v := vals[i]
		switch k {
		case "c":
			m.CaseNumber = v
		case "n":
			m.EvidenceNumber = v
		case "a":
			m.Description = v
		case "e":
			m.Examiner = v
		case "t":
			m.Notes = v
		case "md":
			m.Model = v
		case "sn":
			m.Serial = v
		case "av":
			m.Software = v
		case "ov":
			m.OS = v
		case "m":
			m.AcquisitionTime = parseTime(v)
		case "u":
			m.SystemTime = parseTime(v)
		}
	}
	return m, true
}

func parseTime(v string) time.Time {
	if f := strings.Fields(v); len(f) == 6 {
		var n [6]int
		for i := range f {
			n[i], _ = strconv.Atoi(f[i])
		}
		return time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, time.Local)
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && s > 0 {
		return time.Unix(s, 0)
	}
	return time.Time{}
}

// Size is the media size in bytes.
func (r *Reader) Size() int64 { return r.size }

// Metadata returns the case information (from header2 if present, else header).
func (r *Reader) Metadata() Metadata { return r.meta }

// Hashes returns the stored digests, keys "MD5" and "SHA1", lower-case hex.
func (r *Reader) Hashes() map[string]string {
	m := make(map[string]string, len(r.hashes))
	for k, v := range r.hashes {
		m[k] = v
	}
	return m
}

// Damage reports the sections that describe the media but are corrupt (error2, hash, digest):
// the media still reads, but what they held (stored hashes, unreadable ranges) is lost, so a
// verifier must fail on it. Nil when there are none.
func (r *Reader) Damage() error { return errors.Join(r.damage...) }

// ReadErrors lists the sector ranges the acquisition could not read.
func (r *Reader) ReadErrors() []SectorRange { return append([]SectorRange(nil), r.errs...) }

// Close closes all segment files.
func (r *Reader) Close() error {
	var first error
	for _, f := range r.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	r.files = nil
	return first
}

// chunk returns the decompressed chunk idx; r.mu must be held.
func (r *Reader) chunk(idx int64) ([]byte, error) {
	for i := range r.cache {
		if r.cache[i].data != nil && r.cache[i].idx == idx {
			return r.cache[i].data, nil
		}
	}
	c := r.chunks[idx]
	if int64(cap(r.raw)) < c.size {
		r.raw = make([]byte, c.size)
	}
	raw := r.raw[:c.size]
	if _, err := r.files[c.seg].ReadAt(raw, c.off); err != nil {
		return nil, fmt.Errorf("ewf: chunk %d: %w", idx, err)
	}
	want := min(r.chunkSize, r.size-idx*r.chunkSize)
	slot := &r.cache[r.next]
	r.next = (r.next + 1) % len(r.cache)
	if cap(slot.data) < int(r.chunkSize) {
		slot.data = make([]byte, r.chunkSize)
	}
	out := slot.data[:want]
	slot.data = nil
	if c.comp {
		var err error
		if r.zr == nil {
			r.zr, err = zlib.NewReader(bytes.NewReader(raw))
		} else {
			err = r.zr.(zlib.Resetter).Reset(bytes.NewReader(raw), nil)
		}
		if err != nil {
			return nil, fmt.Errorf("ewf: chunk %d: %w", idx, err)
		}
		if _, err := io.ReadFull(r.zr, out); err != nil {
			return nil, fmt.Errorf("ewf: chunk %d: %w", idx, err)
		}
	} else {
		if int64(len(raw)) < want {
			return nil, fmt.Errorf("ewf: chunk %d: short (%d bytes)", idx, len(raw))
		}
		copy(out, raw[:want])
		if int64(len(raw)) >= want+4 && binary.LittleEndian.Uint32(raw[want:]) != adler32.Checksum(out) {
			return nil, fmt.Errorf("ewf: chunk %d: checksum mismatch", idx)
		}
	}
	slot.idx, slot.data = idx, out
	return out, nil
}

// ReadAt reads media bytes at off, decompressing chunks as needed.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("ewf: negative offset")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		if off >= r.size {
			return n, io.EOF
		}
		idx := off / r.chunkSize
		data, err := r.chunk(idx)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], data[off-idx*r.chunkSize:])
		n += k
		off += int64(k)
	}
	return n, nil
}
