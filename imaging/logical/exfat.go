package logical

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"
	"unicode/utf16"
)

// exFAT is read by this package too (dsoprea/go-exfat was evaluated: unmaintained since 2019,
// no deleted entries). A file is a directory entry set: a File entry (attributes, times), a
// Stream Extension (first cluster, length, whether the clusters are contiguous without a FAT
// chain) and File Name entries of 15 UTF-16 units each. Deleting clears the "in use" bit of
// each entry of the set, so deleted files keep their names and, until reuse, their clusters.

const (
	exfatFile     = 0x85
	exfatStream   = 0xc0
	exfatName     = 0xc1
	exfatLabel    = 0x83
	exfatInUse    = 0x80
	exfatNoChain  = 0x02
	exfatMaxDir   = 256 << 20
	exfatDirAttr  = 0x10
	exfatEOC      = 0xffffffff
	exfatBadClust = 0xfffffff7
)

type exfatVol struct {
	r           *io.SectionReader
	fatOff      int64
	fatLen      int64
	heapOff     int64
	clusterSize int64
	clusters    uint32
	rootClus    uint32
}

func openExFAT(r *io.SectionReader) (*exfatVol, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("exfat: read boot sector: %w", err)
	}
	if string(b[3:11]) != "EXFAT   " {
		return nil, fmt.Errorf("exfat: no boot sector signature")
	}
	le := binary.LittleEndian
	bpsShift, spcShift := b[108], b[109]
	if bpsShift < 9 || bpsShift > 12 || int(bpsShift)+int(spcShift) > 25 {
		return nil, fmt.Errorf("exfat: implausible sector/cluster shifts %d/%d", bpsShift, spcShift)
	}
	bps := int64(1) << bpsShift
	v := &exfatVol{r: r, fatOff: int64(le.Uint32(b[80:])) * bps, fatLen: int64(le.Uint32(b[84:])) * bps,
		heapOff: int64(le.Uint32(b[88:])) * bps, clusterSize: bps << spcShift,
		clusters: le.Uint32(b[92:]), rootClus: le.Uint32(b[96:])}
	if !v.valid(v.rootClus) || int64(v.clusters)*4 > v.fatLen+8 {
		return nil, fmt.Errorf("exfat: implausible geometry (root cluster %d, %d clusters)", v.rootClus, v.clusters)
	}
	return v, nil
}

func (v *exfatVol) valid(c uint32) bool       { return c >= 2 && c < v.clusters+2 }
func (v *exfatVol) clusterOff(c uint32) int64 { return v.heapOff + int64(c-2)*v.clusterSize }

func (v *exfatVol) next(c uint32) (uint32, error) {
	b := make([]byte, 4)
	if _, err := v.r.ReadAt(b, v.fatOff+int64(c)*4); err != nil {
		return 0, fmt.Errorf("exfat: read FAT entry %d: %w", c, err)
	}
	return binary.LittleEndian.Uint32(b), nil
}

// extents maps size bytes from cluster first: contiguous when noChain (or when the FAT chain
// is gone, as for a deleted file), else along the FAT chain.
func (v *exfatVol) extents(first uint32, size int64, noChain bool) ([]extent, error) {
	if size == 0 {
		return nil, nil
	}
	if !v.valid(first) {
		return nil, fmt.Errorf("exfat: invalid first cluster %d", first)
	}
	if noChain {
		off := v.clusterOff(first)
		if off+size > v.r.Size() {
			return nil, fmt.Errorf("exfat: contiguous data at cluster %d runs past the volume", first)
		}
		return []extent{{off, size}}, nil
	}
	var rs []extent
	c := first
	for n := uint32(0); size > 0; n++ {
		if !v.valid(c) || n > v.clusters {
			return nil, fmt.Errorf("exfat: cluster chain from %d broken at %d", first, c)
		}
		k := min(v.clusterSize, size)
		off := v.clusterOff(c)
		rs = appendExtent(rs, off, k)
		size -= k
		if size == 0 {
			break
		}
		nx, err := v.next(c)
		if err != nil {
			return nil, err
		}
		if nx == exfatEOC || nx == exfatBadClust {
			return nil, fmt.Errorf("exfat: cluster chain from %d ends %d bytes early", first, size)
		}
		c = nx
	}
	return rs, nil
}

type exfatEntry struct {
	Entry
	name string
}

func (v *exfatVol) readDir(first uint32, size int64, noChain bool) ([]byte, error) {
	if size <= 0 { // the root directory has no stream entry: follow the chain to its end
		n := int64(0)
		for c := first; v.valid(c) && n <= int64(v.clusters); n++ {
			nx, err := v.next(c)
			if err != nil {
				return nil, err
			}
			c = nx
		}
		size = n * v.clusterSize
	}
	if size > exfatMaxDir {
		return nil, fmt.Errorf("exfat: directory at cluster %d: implausible size %d", first, size)
	}
	rs, err := v.extents(first, size, noChain)
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(extentReader(v.r, rs), b); err != nil {
		return nil, fmt.Errorf("exfat: read directory at cluster %d: %w", first, err)
	}
	return b, nil
}

// parseDir decodes the entry sets of a directory; label is the volume label entry, if any.
func (v *exfatVol) parseDir(b []byte) (out []exfatEntry, label string) {
	le := binary.LittleEndian
	for i := 0; i+32 <= len(b); i += 32 {
		d := b[i : i+32]
		typ := d[0]
		if typ == 0 {
			break // end of directory
		}
		if typ == exfatLabel {
			n := min(int(d[1]), 11)
			label = utf16String(d[2 : 2+2*n])
			continue
		}
		if typ&0x7f != exfatFile&0x7f {
			continue
		}
		inUse := typ&exfatInUse != 0
		sec := int(d[1])
		if sec < 2 || i+32*(sec+1) > len(b) {
			continue
		}
		st := b[i+32 : i+64]
		// A set is read only if its secondaries have the same in-use state; a deleted set
		// partly overwritten by a new one is skipped rather than mixed up.
		if st[0] != exfatStream&^byte(boolBit(!inUse)) {
			continue
		}
		nameLen := int(st[3])
		var units []byte
		ok := true
		for k := 2; k <= sec && len(units) < 2*nameLen; k++ {
			ne := b[i+32*k : i+32*k+32]
			if ne[0] != exfatName&^byte(boolBit(!inUse)) {
				ok = false
				break
			}
			units = append(units, ne[2:32]...)
		}
		if !ok || len(units) < 2*nameLen {
			continue
		}
		if le.Uint64(st[24:]) > 1<<62 { // DataLength beyond any volume: a corrupt set, like those above
			continue
		}
		attr := le.Uint16(d[4:])
		e := exfatEntry{name: utf16String(units[:2*nameLen])}
		e.contiguous = st[1]&exfatNoChain != 0
		e.Dir = attr&exfatDirAttr != 0
		e.Attributes = uint32(attr)
		e.Deleted = !inUse
		e.ID = uint64(le.Uint32(st[20:]))
		e.Size = int64(le.Uint64(st[24:]))
		e.Created = exfatTime(le.Uint32(d[8:]), d[20])
		e.Modified = exfatTime(le.Uint32(d[12:]), d[21])
		e.Accessed = exfatTime(le.Uint32(d[16:]), 0)
		if e.Dir {
			e.Mode = fs.ModeDir
		}
		out = append(out, e)
		i += 32 * sec
	}
	return out, label
}

func boolBit(b bool) int {
	if b {
		return exfatInUse
	}
	return 0
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// exfatTime decodes a timestamp with its 10 ms increment. Like TSK, the UTC offset fields are
// not applied: the wall-clock time is returned as UTC.
func exfatTime(ts uint32, tenMS byte) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(ts>>25), time.Month(ts>>21&15), int(ts>>16&31),
		int(ts>>11&31), int(ts>>5&63), int(ts&31)*2+int(tenMS)/100, int(tenMS)%100*10*int(time.Millisecond), time.UTC)
}

// exfatVolumeLabel returns the label entry of the root directory.
func exfatVolumeLabel(r *io.SectionReader) (label string) {
	defer func() {
		if recover() != nil {
			label = ""
		}
	}()
	v, err := openExFAT(r)
	if err != nil {
		return ""
	}
	b, err := v.readDir(v.rootClus, 0, false)
	if err != nil {
		return ""
	}
	_, label = v.parseDir(b)
	return label
}

func (v *exfatVol) Walk(fn func(Entry) error, onErr func(string, error)) (err error) {
	return v.walkDir(exfatEntry{Entry: Entry{ID: uint64(v.rootClus)}}, "", map[uint32]bool{}, fn, onErr)
}

func (v *exfatVol) walkDir(d exfatEntry, dir string, seen map[uint32]bool, fn func(Entry) error, onErr func(string, error)) error {
	raw, err := v.readDir(uint32(d.ID), d.dirSize, d.contiguous)
	if err != nil {
		onErr(dir, err)
		return nil
	}
	es, _ := v.parseDir(raw)
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].name != es[j].name {
			return es[i].name < es[j].name
		}
		return !es[i].Deleted && es[j].Deleted
	})
	for _, e := range es {
		e.Path = childPath("exfat", dir, e.name, onErr)
		if e.Dir {
			e.dirSize, e.Size = e.Size, 0 // Entry.Size is for file content
		}
		if err := fn(e.Entry); err != nil {
			return err
		}
		if !enterCluster("exfat", e.Entry, v.valid, seen, onErr) {
			continue
		}
		if err := v.walkDir(e, e.Path, seen, fn, onErr); err != nil {
			return err
		}
	}
	return nil
}

// Open reads a file's clusters: contiguous if its stream entry says so (NoFatChain, carried
// from Walk in the Entry) or if it is deleted (its chain may be gone; TSK assumes the same),
// else along the FAT chain.
func (v *exfatVol) Open(e Entry) (rc io.ReadCloser, err error) {
	if rc, done, err := openTrivial("exfat", e); done {
		return rc, err
	}
	rs, err := v.extents(uint32(e.ID), e.Size, e.contiguous || e.Deleted)
	if err != nil {
		return nil, fmt.Errorf("exfat: open %s: %w", e.Path, err)
	}
	return io.NopCloser(exactReader(extentReader(v.r, rs), e.Size, e.Path)), nil
}
