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
	ltree     []byte // body of the ltree section of an L01 set

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
func openSet(open OpenFunc, first string, logical bool) (*Reader, error) {
	sig, segName := evfSignature, SegmentName
	if logical {
		sig, segName = lvfSignature, LogicalSegmentName
	}
	if len(first) < 4 || first[len(first)-4] != '.' {
		return nil, fmt.Errorf("ewf: %q is not a segment file name", first)
	}
	base := first[:len(first)-4]
	r := &Reader{hashes: map[string]string{}}
	var volChunks uint32
	var spc, bps uint32
	var sectors uint64
	headerSeen := false
	for seg := 1; ; seg++ {
		name := first
		if seg > 1 {
			name = segName(base, seg)
			if ext := first[len(first)-3:]; ext[0] == 'e' || ext[0] == 'l' { // keep lower-case sets lower-case
				name = base + "." + strings.ToLower(name[len(base)+1:])
			}
		}
		f, err := open(name)
		if err != nil {
			if seg > 1 {
				break
			}
			return nil, err
		}
		r.files = append(r.files, f)
		var fh [fileHdrSize]byte
		if _, err := f.ReadAt(fh[:], 0); err != nil || !bytes.Equal(fh[:8], sig) {
			r.Close()
			return nil, fmt.Errorf("ewf: %s: not an EWF segment", name)
		}
		if n := binary.LittleEndian.Uint16(fh[9:]); int(n) != seg {
			r.Close()
			return nil, fmt.Errorf("ewf: %s: segment number %d, want %d", name, n, seg)
		}
		off := int64(fileHdrSize)
		fsize := f.Size()
		var sectorsEnd int64
		last := ""
		for off+descSize <= fsize {
			var d [descSize]byte
			if _, err := f.ReadAt(d[:], off); err != nil {
				r.Close()
				return nil, err
			}
			if binary.LittleEndian.Uint32(d[72:]) != adler32.Checksum(d[:72]) {
				r.Close()
				return nil, fmt.Errorf("ewf: %s: bad section descriptor checksum at %d", name, off)
			}
			typ := string(bytes.TrimRight(d[:16], "\x00"))
			next := int64(binary.LittleEndian.Uint64(d[16:]))
			size := int64(binary.LittleEndian.Uint64(d[24:]))
			last = typ
			readBody := func() ([]byte, error) {
				if size < descSize || off+size > fsize || size > 1<<28 {
					return nil, fmt.Errorf("ewf: %s: bad %s section size %d", name, typ, size)
				}
				b := make([]byte, size-descSize)
				_, err := f.ReadAt(b, off+descSize)
				return b, err
			}
			switch typ {
			case "header2", "header":
				if headerSeen && typ == "header" {
					break
				}
				b, err := readBody()
				if err != nil {
					r.Close()
					return nil, err
				}
				if m, ok := parseHeader(b, typ == "header2"); ok {
					r.meta = m
					headerSeen = true
				}
			case "volume", "disk", "data":
				b, err := readBody()
				if err != nil {
					r.Close()
					return nil, err
				}
				if len(b) >= 24 && spc == 0 {
					volChunks = binary.LittleEndian.Uint32(b[4:])
					spc = binary.LittleEndian.Uint32(b[8:])
					bps = binary.LittleEndian.Uint32(b[12:])
					if len(b) >= 1052 {
						sectors = binary.LittleEndian.Uint64(b[16:])
					} else {
						sectors = uint64(binary.LittleEndian.Uint32(b[16:]))
					}
				}
			case "sectors":
				sectorsEnd = off + size
			case "ltree":
				if logical {
					b, err := readBody()
					if err != nil {
						r.Close()
						return nil, err
					}
					r.ltree = b
				}
			case "table":
				b, err := readBody()
				if err != nil {
					r.Close()
					return nil, err
				}
				if err := r.addTable(b, int32(seg-1), off, sectorsEnd); err != nil {
					r.Close()
					return nil, fmt.Errorf("ewf: %s: %w", name, err)
				}
			case "error2":
				b, err := readBody()
				if err == nil && len(b) >= error2HdrSize {
					n := int(binary.LittleEndian.Uint32(b))
					for i := 0; i < n && error2HdrSize+8*i+8 <= len(b); i++ {
						e := b[error2HdrSize+8*i:]
						r.errs = append(r.errs, SectorRange{int64(binary.LittleEndian.Uint32(e)), int64(binary.LittleEndian.Uint32(e[4:]))})
					}
				}
			case "hash":
				b, err := readBody()
				if err == nil && len(b) >= 16 && !allZero(b[:16]) {
					r.hashes["MD5"] = hex.EncodeToString(b[:16])
				}
			case "digest":
				b, err := readBody()
				if err == nil && len(b) >= 36 {
					if !allZero(b[:16]) {
						r.hashes["MD5"] = hex.EncodeToString(b[:16])
					}
					if !allZero(b[16:36]) {
						r.hashes["SHA1"] = hex.EncodeToString(b[16:36])
					}
				}
			}
			if typ == "next" || typ == "done" || next <= off {
				break
			}
			off = next
		}
		if last == "done" {
			break
		}
	}
	if spc == 0 || bps == 0 {
		r.Close()
		return nil, errors.New("ewf: no volume section")
	}
	// Bounds on hostile values: a chunk is allocated whole, and the media size must not overflow.
	if bps > 1<<16 || uint64(spc)*uint64(bps) > maxChunkSize || sectors > 1<<62/uint64(bps) {
		r.Close()
		return nil, fmt.Errorf("ewf: volume section: impossible geometry (%d sectors of %d bytes, %d per chunk)", sectors, bps, spc)
	}
	r.chunkSize = int64(spc) * int64(bps)
	r.size = int64(sectors) * int64(bps)
	if logical {
		tb, err := ltreeTotalBytes(r.ltree)
		if err != nil {
			r.Close()
			return nil, err
		}
		if tb < 0 {
			r.Close()
			return nil, fmt.Errorf("ewf: ltree: negative stream size %d", tb)
		}
		r.size = tb
	}
	if volChunks != 0 && int(volChunks) < len(r.chunks) {
		r.chunks = r.chunks[:volChunks]
	}
	if need := (r.size + r.chunkSize - 1) / r.chunkSize; int64(len(r.chunks)) < need {
		r.Close()
		return nil, fmt.Errorf("ewf: %d chunks stored, %d needed (missing segment?)", len(r.chunks), need)
	}
	return r, nil
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
