package logical

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// FAT12/16/32 is read by this package itself rather than through go-diskfs: its FAT readers
// hide deleted directory entries, timestamps and first clusters, which a forensic listing
// needs, and the on-disk format is small enough to read directly and defensively.

const maxFATBytes = 256 << 20 // the FAT is held in memory; 256 MiB covers 64 Mi clusters

var errNotFAT = errors.New("not a FAT boot sector")

type fatVol struct {
	r           *io.SectionReader
	kind        string // fat12, fat16, fat32
	bps         int64  // bytes per sector
	clusterSize int64
	clusters    uint32 // number of data clusters; valid cluster numbers are 2..clusters+1
	fat         []byte // first FAT copy
	rootOff     int64  // FAT12/16 fixed root directory
	rootLen     int64
	rootClus    uint32 // FAT32 root directory first cluster
	dataOff     int64
}

type fatBPB struct {
	bps, spc, reserved, nfats, rootEnt, totSec, fatSz int64
	rootClus                                          uint32
}

func parseFATBPB(b []byte) (fatBPB, error) {
	if len(b) < 512 || (b[0] != 0xeb && b[0] != 0xe9) || b[510] != 0x55 || b[511] != 0xaa {
		return fatBPB{}, errNotFAT
	}
	p := fatBPB{
		bps:      int64(binary.LittleEndian.Uint16(b[11:])),
		spc:      int64(b[13]),
		reserved: int64(binary.LittleEndian.Uint16(b[14:])),
		nfats:    int64(b[16]),
		rootEnt:  int64(binary.LittleEndian.Uint16(b[17:])),
		totSec:   int64(binary.LittleEndian.Uint16(b[19:])),
		fatSz:    int64(binary.LittleEndian.Uint16(b[22:])),
	}
	if p.totSec == 0 {
		p.totSec = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	if p.fatSz == 0 {
		p.fatSz = int64(binary.LittleEndian.Uint32(b[36:]))
		p.rootClus = binary.LittleEndian.Uint32(b[44:])
	}
	pow2 := func(v int64) bool { return v > 0 && v&(v-1) == 0 }
	if p.bps < 512 || p.bps > 4096 || !pow2(p.bps) || !pow2(p.spc) || p.reserved < 1 ||
		p.nfats < 1 || p.nfats > 4 || p.fatSz < 1 || p.totSec < 1 {
		return fatBPB{}, errNotFAT
	}
	return p, nil
}

func (p fatBPB) rootDirSectors() int64 { return (p.rootEnt*32 + p.bps - 1) / p.bps }
func (p fatBPB) firstDataSector() int64 {
	return p.reserved + p.nfats*p.fatSz + p.rootDirSectors()
}
func (p fatBPB) clusterCount() int64 { return (p.totSec - p.firstDataSector()) / p.spc }

// fatType tells FAT12, 16 and 32 apart by cluster count, as the specification demands (the
// "FAT16   " string in the boot sector is informational only).
func fatType(b []byte) (string, error) {
	p, err := parseFATBPB(b)
	if err != nil {
		return "", err
	}
	n := p.clusterCount()
	switch {
	case n < 1:
		return "", errNotFAT
	case n < 4085:
		return "fat12", nil
	case n < 65525:
		return "fat16", nil
	default:
		if p.rootEnt != 0 || p.rootClus < 2 {
			return "", errNotFAT
		}
		return "fat32", nil
	}
}

// fatBPBLabel returns the label of the extended boot record ("NO NAME" means none).
func fatBPBLabel(b []byte, kind string) string {
	sig, at := 38, 43
	if kind == "fat32" {
		sig, at = 66, 71
	}
	if b[sig] != 0x29 {
		return ""
	}
	l := strings.TrimRight(string(b[at:at+11]), " \x00")
	if l == "NO NAME" {
		return ""
	}
	return l
}

func openFAT(r *io.SectionReader) (*fatVol, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("fat: read boot sector: %w", err)
	}
	kind, err := fatType(b)
	if err != nil {
		return nil, fmt.Errorf("fat: %w", err)
	}
	p, _ := parseFATBPB(b)
	v := &fatVol{r: r, kind: kind, bps: p.bps, clusterSize: p.bps * p.spc, clusters: uint32(p.clusterCount()),
		rootOff: (p.reserved + p.nfats*p.fatSz) * p.bps, rootLen: p.rootEnt * 32, rootClus: p.rootClus,
		dataOff: p.firstDataSector() * p.bps}
	fatLen := p.fatSz * p.bps
	if fatLen > maxFATBytes {
		return nil, fmt.Errorf("fat: FAT of %d bytes is larger than the %d supported", fatLen, maxFATBytes)
	}
	v.fat = make([]byte, fatLen)
	if n, err := r.ReadAt(v.fat, p.reserved*p.bps); err != nil && !(err == io.EOF && n > 0) {
		return nil, fmt.Errorf("fat: read FAT: %w", err)
	}
	return v, nil
}

// next returns the FAT entry of cluster c, or 0 when c lies beyond the FAT.
func (v *fatVol) next(c uint32) uint32 {
	switch v.kind {
	case "fat12":
		o := int(c) + int(c)/2
		if o+1 >= len(v.fat) {
			return 0
		}
		x := uint32(binary.LittleEndian.Uint16(v.fat[o:]))
		if c&1 == 1 {
			return x >> 4
		}
		return x & 0xfff
	case "fat16":
		if int(c)*2+1 >= len(v.fat) {
			return 0
		}
		return uint32(binary.LittleEndian.Uint16(v.fat[c*2:]))
	default:
		if int(c)*4+3 >= len(v.fat) {
			return 0
		}
		return binary.LittleEndian.Uint32(v.fat[c*4:]) & 0x0fffffff
	}
}

func (v *fatVol) eoc(x uint32) bool {
	switch v.kind {
	case "fat12":
		return x >= 0xff8
	case "fat16":
		return x >= 0xfff8
	default:
		return x >= 0x0ffffff8
	}
}

func (v *fatVol) valid(c uint32) bool { return c >= 2 && c < v.clusters+2 }

func (v *fatVol) clusterOff(c uint32) int64 { return v.dataOff + int64(c-2)*v.clusterSize }

// chain follows the cluster chain from first. It stops with an error at a free, bad or
// out-of-range link and at a loop, returning the clusters gathered so far.
func (v *fatVol) chain(first uint32) ([]uint32, error) {
	var cs []uint32
	c := first
	for {
		if !v.valid(c) {
			return cs, fmt.Errorf("cluster chain from %d: invalid cluster %d", first, c)
		}
		if uint32(len(cs)) > v.clusters {
			return cs, fmt.Errorf("cluster chain from %d: loop", first)
		}
		cs = append(cs, c)
		n := v.next(c)
		if v.eoc(n) {
			return cs, nil
		}
		c = n
	}
}

// runs turns clusters into merged (offset, length) extents, cut to size bytes.
func (v *fatVol) runs(cs []uint32, size int64) []extent {
	var rs []extent
	for _, c := range cs {
		if size <= 0 {
			break
		}
		n := min(v.clusterSize, size)
		off := v.clusterOff(c)
		rs = appendExtent(rs, off, n)
		size -= n
	}
	return rs
}

type extent struct{ off, n int64 }

// appendExtent adds n bytes at off, growing the last extent when they follow it (contiguous
// clusters read in one go).
func appendExtent(rs []extent, off, n int64) []extent {
	if i := len(rs) - 1; i >= 0 && rs[i].off+rs[i].n == off {
		rs[i].n += n
		return rs
	}
	return append(rs, extent{off, n})
}

// extentReader reads a list of extents of r in order.
func extentReader(r io.ReaderAt, rs []extent) io.Reader {
	rd := make([]io.Reader, len(rs))
	for i, e := range rs {
		rd[i] = io.NewSectionReader(r, e.off, e.n)
	}
	return io.MultiReader(rd...)
}

// readDir returns the raw directory bytes of the directory starting at cluster c (0: root).
// On a broken cluster chain it returns what the chain gave, with the error.
func (v *fatVol) readDir(c uint32) ([]byte, error) {
	var rs []extent
	var chainErr error
	if c == 0 && v.kind != "fat32" {
		rs = []extent{{v.rootOff, v.rootLen}}
	} else {
		if c == 0 {
			c = v.rootClus
		}
		cs, err := v.chain(c)
		if err != nil {
			chainErr = fmt.Errorf("fat: directory at cluster %d: %w", c, err)
			if len(cs) == 0 {
				return nil, chainErr
			}
		}
		rs = v.runs(cs, int64(len(cs))*v.clusterSize)
	}
	var total int64
	for _, e := range rs {
		total += e.n
	}
	if total > 64<<20 {
		return nil, fmt.Errorf("fat: directory at cluster %d: implausible size %d", c, total)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(extentReader(v.r, rs), buf); err != nil {
		return nil, fmt.Errorf("fat: read directory at cluster %d: %w", c, err)
	}
	return buf, chainErr
}

// fatEntry is a parsed directory entry.
type fatEntry struct {
	Entry
	name string
}

// parseDir decodes 32-byte directory entries, joining long-file-name fragments to the short
// entry they belong to (checked by the short name's checksum). Deleted entries are kept: the
// deletion only overwrites the first byte of the short name and of each LFN fragment, so the
// long name usually survives intact.
func (v *fatVol) parseDir(b []byte) []fatEntry {
	var out []fatEntry
	var lfn []string // fragments in storage order (last part first)
	var lfnSum byte
	for i := 0; i+32 <= len(b); i += 32 {
		d := b[i : i+32]
		if d[0] == 0 {
			break // end of directory: nothing after this was ever used
		}
		attr := d[11]
		deleted := d[0] == 0xe5
		if attr&0x3f == 0x0f {
			// A deleted fragment has lost its sequence number to the 0xE5 marker, so a
			// deleted chain is only delimited by its checksum.
			if len(lfn) == 0 || d[13] != lfnSum || !deleted && d[0]&0x40 != 0 {
				lfn, lfnSum = nil, d[13]
			}
			lfn = append(lfn, lfnChars(d))
			continue
		}
		short := shortName(d)
		name := short
		if len(lfn) > 0 && lfnMatches(d, lfn, lfnSum) {
			var sb strings.Builder
			for k := len(lfn) - 1; k >= 0; k-- {
				sb.WriteString(lfn[k])
			}
			name = sb.String()
		}
		lfn = nil
		if attr&0x08 != 0 || short == "." || short == ".." || name == "" {
			continue // volume label, dot entries
		}
		first := uint32(binary.LittleEndian.Uint16(d[26:]))
		if v.kind == "fat32" {
			first |= uint32(binary.LittleEndian.Uint16(d[20:])) << 16
		}
		e := Entry{
			Dir:        attr&0x10 != 0,
			Size:       int64(binary.LittleEndian.Uint32(d[28:])),
			Created:    fatTime(binary.LittleEndian.Uint16(d[16:]), binary.LittleEndian.Uint16(d[14:]), d[13]),
			Modified:   fatTime(binary.LittleEndian.Uint16(d[24:]), binary.LittleEndian.Uint16(d[22:]), 0),
			Accessed:   fatTime(binary.LittleEndian.Uint16(d[18:]), 0, 0),
			Attributes: uint32(attr),
			Deleted:    deleted,
			ID:         uint64(first),
		}
		if e.Dir {
			e.Size = 0
			e.Mode = fs.ModeDir
		}
		out = append(out, fatEntry{Entry: e, name: name})
	}
	return out
}

func lfnChars(d []byte) string {
	var u []uint16
	for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
		for i := r[0]; i < r[1]; i += 2 {
			c := binary.LittleEndian.Uint16(d[i:])
			if c == 0 || c == 0xffff {
				return string(utf16.Decode(u))
			}
			u = append(u, c)
		}
	}
	return string(utf16.Decode(u))
}

// lfnMatches tells whether the long-name fragments belong to short entry d. For a live entry
// the short name's checksum must match. A deleted short entry has lost its first byte, which
// the checksum covers; it is taken from the long name (the 8.3 alias starts with the long
// name's first character, upper-cased), and the chain is accepted if that reproduces the sum.
func lfnMatches(d []byte, lfn []string, sum byte) bool {
	if d[0] != 0xe5 {
		return sfnChecksum(d[:11]) == sum
	}
	first := []rune(lfn[len(lfn)-1])
	if len(first) == 0 || first[0] > 0x7e {
		return false
	}
	n := make([]byte, 11)
	copy(n, d[:11])
	n[0] = strings.ToUpper(string(first[0]))[0]
	return sfnChecksum(n) == sum
}

func sfnChecksum(n []byte) byte {
	var s byte
	for _, c := range n {
		s = (s&1)<<7 + s>>1 + c
	}
	return s
}

// shortName renders an 8.3 name, honouring the NT lower-case flags that Linux and Windows
// set instead of writing an LFN entry for names like "readme.txt".
func shortName(d []byte) string {
	base := []byte(strings.TrimRight(string(d[0:8]), " "))
	deleted := len(base) > 0 && base[0] == 0xe5
	if deleted {
		base[0] = '_' // the first character is gone; TSK marks it the same way
	}
	ext := []byte(strings.TrimRight(string(d[8:11]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xe5 // 0x05 escapes a real leading 0xE5 (a Kanji lead byte)
	}
	if d[12]&0x08 != 0 {
		base = []byte(strings.ToLower(string(base)))
	}
	if d[12]&0x10 != 0 {
		ext = []byte(strings.ToLower(string(ext)))
	}
	latin1 := func(b []byte) string {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	if len(ext) > 0 {
		return latin1(base) + "." + latin1(ext)
	}
	return latin1(base)
}

// fatTime decodes a FAT date and time. FAT stores local time without a zone; it is returned
// as UTC wall-clock time, which is how forensic tools conventionally report it.
func fatTime(date, tm uint16, tenths byte) time.Time {
	if date == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(date>>9), time.Month(date>>5&15), int(date&31),
		int(tm>>11), int(tm>>5&63), int(tm&31)*2+int(tenths)/100, int(tenths)%100*10*int(time.Millisecond), time.UTC)
}

func (v *fatVol) Walk(fn func(Entry) error, onErr func(string, error)) (err error) {
	return v.walkDir(0, "", map[uint32]bool{}, fn, onErr)
}

func (v *fatVol) walkDir(c uint32, dir string, seen map[uint32]bool, fn func(Entry) error, onErr func(string, error)) error {
	raw, err := v.readDir(c)
	if err != nil {
		onErr(dir, err) // and list what could be read
	}
	es := v.parseDir(raw)
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].name != es[j].name {
			return es[i].name < es[j].name
		}
		return !es[i].Deleted && es[j].Deleted
	})
	for _, e := range es {
		e.Path = childPath("fat", dir, e.name, onErr)
		if err := fn(e.Entry); err != nil {
			return err
		}
		if !enterCluster("fat", e.Entry, v.valid, seen, onErr) {
			continue
		}
		if err := v.walkDir(uint32(e.ID), e.Path, seen, fn, onErr); err != nil {
			return err
		}
	}
	return nil
}

// enterCluster reports whether a FAT or exFAT walk descends into e, a directory starting at
// cluster e.ID. Deleted directories are listed but not entered: their clusters may already hold
// other data, and parsing that as entries would invent files. An invalid cluster or one already
// walked (a loop in a corrupt volume) is reported to onErr.
func enterCluster(fsName string, e Entry, valid func(uint32) bool, seen map[uint32]bool, onErr func(string, error)) bool {
	if !e.Dir || e.Deleted {
		return false
	}
	c := uint32(e.ID)
	if !valid(c) || seen[c] {
		onErr(e.Path, fmt.Errorf("%s: directory at cluster %d: invalid or loop", fsName, c))
		return false
	}
	seen[c] = true
	return true
}

// Open reads an allocated file along its cluster chain. A deleted file's chain is gone (the
// FAT entries were zeroed), so, as TSK does, its content is taken as Size contiguous bytes
// from its first cluster: correct for unfragmented files whose clusters were not reused.
func (v *fatVol) Open(e Entry) (rc io.ReadCloser, err error) {
	if rc, done, err := openTrivial("fat", e); done {
		return rc, err
	}
	first := uint32(e.ID)
	if !v.valid(first) {
		return nil, fmt.Errorf("fat: open %s: invalid first cluster %d", e.Path, first)
	}
	var rs []extent
	if e.Deleted {
		off := v.clusterOff(first)
		n := min(e.Size, v.r.Size()-off)
		rs = []extent{{off, n}}
	} else {
		cs, err := v.chain(first)
		if err != nil {
			return nil, fmt.Errorf("fat: open %s: %w", e.Path, err)
		}
		if int64(len(cs))*v.clusterSize < e.Size {
			return nil, fmt.Errorf("fat: open %s: chain of %d clusters is shorter than size %d", e.Path, len(cs), e.Size)
		}
		rs = v.runs(cs, e.Size)
	}
	return io.NopCloser(exactReader(extentReader(v.r, rs), e.Size, e.Path)), nil
}

// exactReader makes a short read an error, since callers rely on getting exactly Size bytes.
func exactReader(r io.Reader, size int64, name string) io.Reader {
	return &exact{r: io.LimitReader(r, size), left: size, name: name}
}

type exact struct {
	r    io.Reader
	left int64
	name string
}

func (x *exact) Read(p []byte) (n int, err error) {
	n, err = x.r.Read(p)
	x.left -= int64(n)
	if err == io.EOF && x.left > 0 {
		return n, fmt.Errorf("read %s: %w (%d bytes missing)", x.name, io.ErrUnexpectedEOF, x.left)
	}
	return n, err
}
