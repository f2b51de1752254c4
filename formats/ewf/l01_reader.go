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
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// LogicalFile is one entry of an L01 as read back.
type LogicalFile struct {
	LogicalEntry
	Hashes FileHashes
	Flags  uint32 // EnCase file entry flags ("opr")

	off, dataSize int64 // extent in the logical data stream
}

// LogicalReader lists and reads the entries of an L01 set.
type LogicalReader struct {
	r      *Reader
	files  []LogicalFile
	byPath map[string]int
}

// OpenLogical opens a local L01 set by the path of its first segment.
func OpenLogical(path string) (*LogicalReader, error) {
	return OpenLogicalSet(func(name string) (ReadFile, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return osReadFile{f}, nil
	}, path)
}

// OpenLogicalSet opens an L01 set through open (a network share, say) by its first segment's name.
func OpenLogicalSet(open OpenFunc, path string) (*LogicalReader, error) {
	r, err := openSet(open, path, true)
	if err != nil {
		return nil, err
	}
	files, err := parseLtree(r.ltree)
	r.ltree = nil // parsed; a large tree need not stay in memory twice
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("ewf: %s: %w", path, err)
	}
	lr := &LogicalReader{r: r, files: files, byPath: make(map[string]int, len(files))}
	for _, f := range files {
		if f.Dir {
			continue
		}
		if f.off < 0 || f.dataSize != max(f.Size, 1) || f.off+f.dataSize > r.size {
			r.Close()
			return nil, fmt.Errorf("ewf: %s: %s: extent %d+%d outside the %d-byte stream", path, f.Path, f.off, f.dataSize, r.size)
		}
	}
	for i, f := range files {
		lr.byPath[f.Path] = i
	}
	return lr, nil
}

// Entries lists files and directories in tree order (parents before children).
func (lr *LogicalReader) Entries() []LogicalFile { return append([]LogicalFile(nil), lr.files...) }

// Open returns the content of the file at path.
func (lr *LogicalReader) Open(path string) (*io.SectionReader, error) {
	i, ok := lr.byPath[strings.Trim(path, "/")]
	if !ok {
		return nil, fmt.Errorf("ewf: %s: no such entry", path)
	}
	f := lr.files[i]
	if f.Dir {
		return nil, fmt.Errorf("ewf: %s is a directory", path)
	}
	return io.NewSectionReader(lr.r, f.off, f.Size), nil
}

// Metadata returns the case information.
func (lr *LogicalReader) Metadata() Metadata { return lr.r.Metadata() }

// StreamHashes returns the digests of the whole logical data stream ("MD5", "SHA1").
func (lr *LogicalReader) StreamHashes() map[string]string { return lr.r.Hashes() }

// StreamSize is the size of the logical data stream.
func (lr *LogicalReader) StreamSize() int64 { return lr.r.Size() }

// Verify reads the stream once, in order, and compares it and every file in it with the stored
// digests. A file whose extent overlaps an earlier one (not written by us) is read on its own.
// A damaged hash, digest or error2 section fails it: what it held cannot be checked.
func (lr *LogicalReader) Verify() error {
	if err := lr.r.Damage(); err != nil {
		return err
	}
	check := func(hm, hs hash.Hash, m, s string) error {
		if got := hex.EncodeToString(hm.Sum(nil)); m != "" && got != m {
			return fmt.Errorf("MD5 %s, stored %s", got, m)
		}
		if got := hex.EncodeToString(hs.Sum(nil)); s != "" && got != s {
			return fmt.Errorf("SHA1 %s, stored %s", got, s)
		}
		return nil
	}
	var files []LogicalFile
	for _, f := range lr.files {
		if !f.Dir && f.Hashes != (FileHashes{}) {
			files = append(files, f)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].off < files[j].off })
	sm, ss, fm, fs := md5.New(), sha1.New(), md5.New(), sha1.New()
	stream, file := io.MultiWriter(sm, ss), io.MultiWriter(sm, ss, fm, fs)
	sr := io.NewSectionReader(lr.r, 0, lr.r.Size())
	var pos int64
	for _, f := range files {
		fm.Reset()
		fs.Reset()
		if f.off < pos {
			if _, err := io.Copy(io.MultiWriter(fm, fs), io.NewSectionReader(lr.r, f.off, f.Size)); err != nil {
				return fmt.Errorf("ewf: %s: %w", f.Path, err)
			}
		} else {
			if _, err := io.CopyN(stream, sr, f.off-pos); err != nil {
				return fmt.Errorf("ewf: logical stream: %w", err)
			}
			if _, err := io.CopyN(file, sr, f.Size); err != nil {
				return fmt.Errorf("ewf: %s: %w", f.Path, err)
			}
			pos = f.off + f.Size
		}
		if err := check(fm, fs, f.Hashes.MD5, f.Hashes.SHA1); err != nil {
			return fmt.Errorf("ewf: %s: %w", f.Path, err)
		}
	}
	if _, err := io.Copy(stream, sr); err != nil {
		return fmt.Errorf("ewf: logical stream: %w", err)
	}
	h := lr.r.Hashes()
	if err := check(sm, ss, h["MD5"], h["SHA1"]); err != nil {
		return fmt.Errorf("ewf: logical stream: %w", err)
	}
	return nil
}

// Close closes the segment files.
func (lr *LogicalReader) Close() error { return lr.r.Close() }

// ltreeString checks an ltree section body and decodes its UTF-16 text.
func ltreeString(b []byte) (string, error) {
	if len(b) < ltreeHdrSize {
		return "", errors.New("short ltree section")
	}
	var h [ltreeHdrSize]byte
	copy(h[:], b)
	stored := binary.LittleEndian.Uint32(h[24:])
	clear(h[24:28])
	if adler32.Checksum(h[:]) != stored {
		return "", errors.New("ltree header checksum mismatch")
	}
	data := b[ltreeHdrSize:]
	if n := binary.LittleEndian.Uint32(h[16:]); int64(n) > int64(len(data)) {
		return "", fmt.Errorf("ltree data size %d past the section", n)
	}
	if sum := md5.Sum(data); !bytes.Equal(sum[:], h[:16]) {
		return "", errors.New("ltree MD5 mismatch")
	}
	u := make([]uint16, len(data)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(data[2*i:])
	}
	s := string(utf16.Decode(u))
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return strings.TrimPrefix(s, "\ufeff"), nil
}

func ltreeLines(b []byte) ([]string, error) {
	s, err := ltreeString(b)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

// ltreeTotalBytes returns the stream size, "tb" of the "rec" category.
func ltreeTotalBytes(b []byte) (int64, error) {
	if b == nil {
		return 0, errors.New("ewf: no ltree section")
	}
	lines, err := ltreeLines(b)
	if err != nil {
		return 0, fmt.Errorf("ewf: %w", err)
	}
	for i := 0; i+2 < len(lines); i++ {
		if lines[i] != "rec" {
			continue
		}
		vals := strings.Split(lines[i+2], "\t")
		for k, t := range strings.Split(lines[i+1], "\t") {
			if t == "tb" && k < len(vals) {
				tb, err := strconv.ParseInt(vals[k], 10, 64)
				if err != nil || tb < 0 {
					return 0, fmt.Errorf("ewf: ltree: bad tb %q", vals[k])
				}
				return tb, nil
			}
		}
	}
	return 0, errors.New("ewf: ltree: no rec/tb")
}

// parseLtree lists the entries of the "entry" category, root excluded.
func parseLtree(b []byte) ([]LogicalFile, error) {
	lines, err := ltreeLines(b)
	if err != nil {
		return nil, err
	}
	i := 0
	for i < len(lines) && lines[i] != "entry" {
		i++
	}
	if i+2 >= len(lines) {
		return nil, errors.New("ltree: no entry category")
	}
	types := strings.Split(lines[i+2], "\t")
	col := map[string]int{}
	for k, t := range types {
		col[t] = k
	}
	i += 3
	var out []LogicalFile
	// Iterative walk: a stack of the remaining child counts and the path of each open directory.
	type frame struct {
		left int
		path string
	}
	var stack []frame
	for first := true; first || len(stack) > 0; first = false {
		if i+1 >= len(lines) {
			return nil, errors.New("ltree: truncated entry list")
		}
		head := strings.Split(lines[i], "\t")
		if len(head) != 2 {
			return nil, fmt.Errorf("ltree: line %d: bad entry head %q", i+1, lines[i])
		}
		nsub, err := strconv.Atoi(head[1])
		if err != nil || nsub < 0 {
			return nil, fmt.Errorf("ltree: line %d: bad child count %q", i+1, head[1])
		}
		vals := strings.Split(lines[i+1], "\t")
		i += 2
		get := func(t string) string {
			if k, ok := col[t]; ok && k < len(vals) {
				return vals[k]
			}
			return ""
		}
		path := ""
		if !first {
			top := &stack[len(stack)-1]
			top.left--
			path = get("n")
			if top.path != "" {
				path = top.path + "/" + path
			}
			f, err := ltreeEntry(get, path)
			if err != nil {
				return nil, fmt.Errorf("ltree: line %d: %w", i, err)
			}
			out = append(out, f)
		}
		if nsub > 0 {
			stack = append(stack, frame{nsub, path})
		}
		for len(stack) > 0 && stack[len(stack)-1].left == 0 {
			stack = stack[:len(stack)-1]
		}
	}
	return out, nil
}

func ltreeEntry(get func(string) string, path string) (LogicalFile, error) {
	f := LogicalFile{LogicalEntry: LogicalEntry{Path: path, Dir: get("p") == "1"}, off: -1}
	num := func(t string, base int) (int64, error) {
		v := get(t)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, base, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: bad %s %q", path, t, v)
		}
		return n, nil
	}
	tm := func(t string) (time.Time, error) {
		n, err := num(t, 10)
		if err != nil || n == 0 {
			return time.Time{}, err
		}
		return time.Unix(n, 0), nil
	}
	var err error
	if f.Size, err = num("ls", 10); err != nil {
		return f, err
	}
	opr, err := num("opr", 10)
	if err != nil {
		return f, err
	}
	f.Flags = uint32(opr)
	f.Deleted = f.Flags&lefDeleted != 0
	for _, t := range []struct {
		k string
		p *time.Time
	}{{"cr", &f.Created}, {"wr", &f.Modified}, {"ac", &f.Accessed}, {"mo", &f.Changed}} {
		if *t.p, err = tm(t.k); err != nil {
			return f, err
		}
	}
	if h := get("ha"); strings.Trim(h, "0") != "" {
		f.Hashes.MD5 = strings.ToLower(h)
	}
	if h := get("sha"); strings.Trim(h, "0") != "" {
		f.Hashes.SHA1 = strings.ToLower(h)
	}
	if be := strings.Fields(get("be")); len(be) == 3 {
		f.off, err = strconv.ParseInt(be[1], 16, 64)
		if err == nil {
			f.dataSize, err = strconv.ParseInt(be[2], 16, 64)
		}
		if err != nil {
			return f, fmt.Errorf("%s: bad be %q", path, get("be"))
		}
	} else if !f.Dir {
		return f, fmt.Errorf("%s: file without a single extent (be %q)", path, get("be"))
	}
	return f, nil
}
