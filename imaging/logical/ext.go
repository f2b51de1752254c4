package logical

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// ext2/3/4 is read by this package itself. go-diskfs's ext4 reader was evaluated and not used:
// it cannot read ext2/ext3 block-mapped inodes, its path-based Open follows symbolic links,
// it returns no target for long ("slow") symlinks and it rejects inodes whose checksum does not
// match, which evidence must still be read despite. What is needed here is the read-only core
// only: superblock, group descriptors, inodes, extent trees and block maps, linear directories
// (an htree directory is also a valid linear one), which is small and checked against TSK.

const (
	extRootIno      = 2
	extFlagExtents  = 0x80000
	extFlagInline   = 0x10000000
	extIncompat64   = 0x80
	extIncompatFT   = 0x2
	extMaxDepth     = 5
	extMaxDirBytes  = 256 << 20
	extExtentMagic  = 0xf30a
	extInlineFSSize = 60
)

type extVol struct {
	r          *io.SectionReader
	bs         int64 // block size
	inodeSize  int64
	ipg        uint32 // inodes per group
	inodes     uint32
	blocks     uint64
	incompat   uint32
	inodeTable []uint64 // first block of each group's inode table
}

func openExt(r *io.SectionReader) (*extVol, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return nil, fmt.Errorf("ext: read superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[56:]) != 0xef53 {
		return nil, fmt.Errorf("ext: no superblock magic")
	}
	logBS := le.Uint32(sb[24:])
	if logBS > 6 {
		return nil, fmt.Errorf("ext: implausible block size 2^(10+%d)", logBS)
	}
	v := &extVol{r: r, bs: 1024 << logBS, inodeSize: 128, ipg: le.Uint32(sb[40:]), inodes: le.Uint32(sb[0:]),
		blocks: uint64(le.Uint32(sb[4:])), incompat: le.Uint32(sb[96:])}
	if le.Uint32(sb[76:]) >= 1 {
		v.inodeSize = int64(le.Uint16(sb[88:]))
	}
	descSize := int64(32)
	if v.incompat&extIncompat64 != 0 {
		v.blocks |= uint64(le.Uint32(sb[0x150:])) << 32
		if ds := int64(le.Uint16(sb[254:])); ds >= 64 {
			descSize = ds
		}
	}
	bpg := int64(le.Uint32(sb[32:]))
	if v.ipg == 0 || bpg == 0 || v.inodeSize < 128 || v.inodeSize > v.bs || v.inodes == 0 {
		return nil, fmt.Errorf("ext: implausible superblock (inodes/group %d, blocks/group %d, inode size %d)", v.ipg, bpg, v.inodeSize)
	}
	firstData := int64(le.Uint32(sb[20:]))
	groups := (int64(v.blocks) - firstData + bpg - 1) / bpg
	if g2 := (int64(v.inodes) + int64(v.ipg) - 1) / int64(v.ipg); g2 < groups {
		groups = g2
	}
	if groups <= 0 || groups > 1<<24 {
		return nil, fmt.Errorf("ext: implausible group count %d", groups)
	}
	gdt := make([]byte, groups*descSize)
	if _, err := r.ReadAt(gdt, (firstData+1)*v.bs); err != nil {
		return nil, fmt.Errorf("ext: read group descriptors: %w", err)
	}
	v.inodeTable = make([]uint64, groups)
	for g := range v.inodeTable {
		d := gdt[int64(g)*descSize:]
		t := uint64(le.Uint32(d[8:]))
		if descSize >= 64 {
			t |= uint64(le.Uint32(d[0x28:])) << 32
		}
		v.inodeTable[g] = t
	}
	return v, nil
}

// extInode is the part of an on-disk inode this package uses.
type extInode struct {
	num                         uint32
	mode                        uint16
	size                        int64
	flags                       uint32
	block                       []byte // i_block: extent tree root, block map or inline data/symlink target
	ibody                       []byte // in-inode extended attributes (after i_extra_isize), for inline data
	atime, ctime, mtime, crtime time.Time
}

func (v *extVol) inode(n uint32) (*extInode, error) {
	if n < 1 || n > v.inodes {
		return nil, fmt.Errorf("ext: inode %d out of range", n)
	}
	g, idx := (n-1)/v.ipg, (n-1)%v.ipg
	if int(g) >= len(v.inodeTable) {
		return nil, fmt.Errorf("ext: inode %d: group %d out of range", n, g)
	}
	b := make([]byte, v.inodeSize)
	if _, err := v.r.ReadAt(b, int64(v.inodeTable[g])*v.bs+int64(idx)*v.inodeSize); err != nil {
		return nil, fmt.Errorf("ext: read inode %d: %w", n, err)
	}
	le := binary.LittleEndian
	in := &extInode{num: n, mode: le.Uint16(b[0:]), flags: le.Uint32(b[32:]),
		size:  int64(le.Uint32(b[4:])) | int64(le.Uint32(b[108:]))<<32,
		block: b[40:100]}
	if in.size < 0 { // the high half's top bit: no ext file reaches 8 EiB
		return nil, fmt.Errorf("ext: inode %d: impossible size %d", n, uint64(in.size))
	}
	extra := int64(0)
	if v.inodeSize > 128 {
		extra = int64(le.Uint16(b[128:]))
	}
	// Each *_extra field exists only if i_extra_isize reaches past it.
	ext := func(off int64) (uint32, bool) {
		if 128+extra >= off+4 && off+4 <= v.inodeSize {
			return le.Uint32(b[off:]), true
		}
		return 0, false
	}
	ts := func(secOff, extraOff int64) time.Time {
		sec := int64(int32(le.Uint32(b[secOff:])))
		var nsec int64
		if x, ok := ext(extraOff); ok {
			sec += int64(x&3) << 32
			nsec = int64(x >> 2)
		}
		if sec == 0 && nsec == 0 {
			return time.Time{}
		}
		return time.Unix(sec, nsec).UTC()
	}
	if 128+extra < v.inodeSize {
		in.ibody = b[128+extra:]
	}
	in.atime, in.ctime, in.mtime = ts(8, 140), ts(12, 132), ts(16, 136)
	if _, ok := ext(144); ok {
		in.crtime = ts(144, 148)
	}
	return in, nil
}

// goMode converts an ext mode to Go's file mode.
func goMode(m uint16) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	switch m & 0xf000 {
	case 0x4000:
		fm |= fs.ModeDir
	case 0xa000:
		fm |= fs.ModeSymlink
	case 0x2000:
		fm |= fs.ModeDevice | fs.ModeCharDevice
	case 0x6000:
		fm |= fs.ModeDevice
	case 0x1000:
		fm |= fs.ModeNamedPipe
	case 0xc000:
		fm |= fs.ModeSocket
	case 0x8000:
	default:
		fm |= fs.ModeIrregular
	}
	return fm
}

// fileExtent maps n logical blocks from lblk to physical block pblk; unwritten extents read as zeros.
type fileExtent struct {
	lblk, pblk, n uint64
	zero          bool
}

// extents returns the data mapping of an inode, sorted by logical block.
func (v *extVol) extents(in *extInode) ([]fileExtent, error) {
	var out []fileExtent
	var err error
	if in.flags&extFlagExtents != 0 {
		err = v.extentTree(in.block, extMaxDepth, &out)
	} else {
		err = v.blockMap(in, &out)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lblk < out[j].lblk })
	return out, err
}

func (v *extVol) extentTree(node []byte, depthLeft int, out *[]fileExtent) error {
	le := binary.LittleEndian
	if len(node) < 12 || le.Uint16(node[0:]) != extExtentMagic {
		return fmt.Errorf("ext: bad extent header")
	}
	entries, depth := int(le.Uint16(node[2:])), int(le.Uint16(node[6:]))
	if depth > depthLeft || 12+12*entries > len(node) {
		return fmt.Errorf("ext: corrupt extent node (depth %d, %d entries)", depth, entries)
	}
	for i := 0; i < entries; i++ {
		e := node[12+12*i:]
		if depth == 0 {
			n, zero := uint64(le.Uint16(e[4:])), false
			if n > 32768 {
				n, zero = n-32768, true
			}
			p := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if p+n > v.blocks {
				return fmt.Errorf("ext: extent beyond the file system (block %d)", p)
			}
			*out = append(*out, fileExtent{lblk: uint64(le.Uint32(e[0:])), pblk: p, n: n, zero: zero})
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		b, err := v.block(child)
		if err != nil {
			return err
		}
		if err := v.extentTree(b, depth-1, out); err != nil {
			return err
		}
	}
	return nil
}

func (v *extVol) block(n uint64) ([]byte, error) {
	if n == 0 || n >= v.blocks {
		return nil, fmt.Errorf("ext: block %d out of range", n)
	}
	b := make([]byte, v.bs)
	if _, err := v.r.ReadAt(b, int64(n)*v.bs); err != nil {
		return nil, fmt.Errorf("ext: read block %d: %w", n, err)
	}
	return b, nil
}

// blockMap reads the ext2/ext3 direct and (double, triple) indirect block pointers.
func (v *extVol) blockMap(in *extInode, out *[]fileExtent) error {
	le := binary.LittleEndian
	nblocks := uint64((in.size + v.bs - 1) / v.bs)
	add := func(l, p uint64) {
		if k := len(*out) - 1; k >= 0 && (*out)[k].lblk+(*out)[k].n == l && (*out)[k].pblk+(*out)[k].n == p {
			(*out)[k].n++
			return
		}
		*out = append(*out, fileExtent{lblk: l, pblk: p, n: 1})
	}
	per := uint64(v.bs / 4)
	var walk func(blk uint64, level int, lblk uint64) error
	walk = func(blk uint64, level int, lblk uint64) error {
		if blk == 0 || lblk >= nblocks {
			return nil // hole
		}
		if level == 0 {
			if blk >= v.blocks {
				return fmt.Errorf("ext: block %d out of range", blk)
			}
			add(lblk, blk)
			return nil
		}
		b, err := v.block(blk)
		if err != nil {
			return err
		}
		span := uint64(1)
		for i := 1; i < level; i++ {
			span *= per
		}
		for i := uint64(0); i < per; i++ {
			if err := walk(uint64(le.Uint32(b[4*i:])), level-1, lblk+i*span); err != nil {
				return err
			}
		}
		return nil
	}
	for i := uint64(0); i < 12; i++ {
		if err := walk(uint64(le.Uint32(in.block[4*i:])), 0, i); err != nil {
			return err
		}
	}
	start := uint64(12)
	span := per
	for level := 1; level <= 3; level++ {
		if err := walk(uint64(le.Uint32(in.block[4*(11+level):])), level, start); err != nil {
			return err
		}
		start += span
		span *= per
	}
	return nil
}

// content returns a reader of the inode's data: exactly in.size bytes, holes and unwritten
// extents as zeros.
func (v *extVol) content(in *extInode) (io.Reader, error) {
	if in.flags&extFlagInline != 0 || in.mode&0xf000 == 0xa000 && in.flags&extFlagExtents == 0 && in.size < extInlineFSSize {
		// Fast symlink targets and inline data live in i_block itself; inline data longer
		// than i_block continues in the in-inode "system.data" extended attribute.
		if in.size <= extInlineFSSize {
			return bytes.NewReader(in.block[:in.size]), nil
		}
		rest := inlineXattr(in.ibody)
		if int64(len(rest)) < in.size-extInlineFSSize {
			return nil, fmt.Errorf("ext: inode %d: inline data of %d bytes, only %d found", in.num, in.size, extInlineFSSize+len(rest))
		}
		return io.MultiReader(bytes.NewReader(in.block), bytes.NewReader(rest[:in.size-extInlineFSSize])), nil
	}
	es, err := v.extents(in)
	if err != nil {
		return nil, fmt.Errorf("ext: inode %d: %w", in.num, err)
	}
	var rs []io.Reader
	pos := int64(0) // bytes of the file produced so far
	for _, e := range es {
		if pos >= in.size {
			break
		}
		start := int64(e.lblk) * v.bs
		if start < pos { // overlapping extents in a corrupt tree: ignore the overlap
			continue
		}
		if start > pos {
			rs = append(rs, io.LimitReader(zeros{}, min(start, in.size)-pos))
			pos = min(start, in.size)
		}
		n := min(int64(e.n)*v.bs, in.size-pos)
		if n <= 0 {
			continue
		}
		if e.zero {
			rs = append(rs, io.LimitReader(zeros{}, n))
		} else {
			rs = append(rs, io.NewSectionReader(v.r, int64(e.pblk)*v.bs, n))
		}
		pos += n
	}
	if pos < in.size { // sparse tail
		rs = append(rs, io.LimitReader(zeros{}, in.size-pos))
	}
	return io.MultiReader(rs...), nil
}

// inlineXattr returns the value of the "system.data" attribute (index 7, name "data") among
// the in-inode extended attributes, or nil.
func inlineXattr(b []byte) []byte {
	le := binary.LittleEndian
	if len(b) < 4 || le.Uint32(b) != 0xea020000 {
		return nil
	}
	vals := b[4:] // value offsets count from the first entry
	for off := 0; off+16 <= len(vals); {
		nameLen, idx := int(vals[off]), vals[off+1]
		if nameLen == 0 && idx == 0 {
			return nil // end of entries
		}
		vOff, vSize := int(le.Uint16(vals[off+2:])), int(le.Uint32(vals[off+8:]))
		if off+16+nameLen > len(vals) {
			return nil
		}
		if idx == 7 && string(vals[off+16:off+16+nameLen]) == "data" {
			if vOff+vSize > len(vals) {
				return nil
			}
			return vals[vOff : vOff+vSize]
		}
		off += (16 + nameLen + 3) &^ 3
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type extDirent struct {
	name string
	ino  uint32
}

// readDir parses a directory linearly. Hash-tree (htree) directories keep their index in
// records that look empty to a linear reader, so this also reads them completely.
func (v *extVol) readDir(in *extInode) ([]extDirent, error) {
	if in.size > extMaxDirBytes {
		return nil, fmt.Errorf("ext: directory inode %d: implausible size %d", in.num, in.size)
	}
	rd, err := v.content(in)
	if err != nil {
		return nil, err
	}
	b := make([]byte, in.size)
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, fmt.Errorf("ext: read directory inode %d: %w", in.num, err)
	}
	le := binary.LittleEndian
	blk := int(v.bs)
	if in.flags&extFlagInline != 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("ext: inline directory inode %d: %d bytes, too short for its parent", in.num, len(b))
		}
		blk = len(b)
		b = b[4:] // inline directories start with the parent inode number
	}
	var out []extDirent
	var bad error
	for base := 0; base < len(b); base += blk {
		end := min(base+blk, len(b))
		for off := base; off+8 <= end; {
			ino := le.Uint32(b[off:])
			recLen := int(le.Uint16(b[off+4:]))
			nameLen := int(b[off+6])
			if v.incompat&extIncompatFT == 0 {
				nameLen = int(le.Uint16(b[off+6:]))
			}
			if recLen < 8 || off+recLen > end || 8+nameLen > recLen {
				bad = fmt.Errorf("ext: directory inode %d: corrupt entry at byte %d", in.num, off)
				break
			}
			if ino != 0 && nameLen > 0 {
				name := string(b[off+8 : off+8+nameLen])
				if name != "." && name != ".." {
					out = append(out, extDirent{name: name, ino: ino})
				}
			}
			off += recLen
		}
	}
	return out, bad
}

func (v *extVol) entry(in *extInode, p string) Entry {
	e := Entry{Path: p, ID: uint64(in.num), Attributes: uint32(in.mode), Mode: goMode(in.mode),
		Created: in.crtime, Modified: in.mtime, Accessed: in.atime, Changed: in.ctime}
	e.Dir = e.Mode.IsDir()
	e.Size = in.contentSize()
	return e
}

// contentSize is what Open yields: a regular file's data or a symbolic link's target; devices,
// fifos and sockets have no content whatever their size field says.
func (in *extInode) contentSize() int64 {
	if t := in.mode & 0xf000; t == 0x8000 || t == 0xa000 {
		return in.size
	}
	return 0
}

func (v *extVol) Walk(fn func(Entry) error, onErr func(string, error)) (err error) {
	root, err := v.inode(extRootIno)
	if err != nil {
		return fmt.Errorf("ext: root directory: %w", err)
	}
	return v.walkDir(root, "", map[uint32]bool{extRootIno: true}, fn, onErr)
}

func (v *extVol) walkDir(dir *extInode, p string, seen map[uint32]bool, fn func(Entry) error, onErr func(string, error)) error {
	ents, err := v.readDir(dir)
	if err != nil {
		onErr(p, err) // report, but still walk the entries read before the damage
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	for _, d := range ents {
		cp := childPath("ext", p, d.name, onErr)
		in, err := v.inode(d.ino)
		if err != nil {
			onErr(cp, err)
			continue
		}
		e := v.entry(in, cp)
		if err := fn(e); err != nil {
			return err
		}
		if !e.Dir {
			continue
		}
		if seen[d.ino] {
			onErr(cp, fmt.Errorf("ext: directory loop at inode %d", d.ino))
			continue
		}
		seen[d.ino] = true
		if err := v.walkDir(in, cp, seen, fn, onErr); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the content of a file; for a symbolic link that is its target (as icat gives),
// for devices, fifos and sockets nothing.
func (v *extVol) Open(e Entry) (rc io.ReadCloser, err error) {
	if e.Dir {
		return nil, fmt.Errorf("ext: open %s: is a directory", e.Path)
	}
	if e.ID > 1<<32-1 {
		return nil, fmt.Errorf("ext: open %s: bad inode %d", e.Path, e.ID)
	}
	in, err := v.inode(uint32(e.ID))
	if err != nil {
		return nil, fmt.Errorf("ext: open %s: %w", e.Path, err)
	}
	if in.contentSize() != e.Size {
		return nil, fmt.Errorf("ext: open %s: inode %d now has size %d, not %d", e.Path, e.ID, in.contentSize(), e.Size)
	}
	if e.Size == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	rd, err := v.content(in)
	if err != nil {
		return nil, fmt.Errorf("ext: open %s: %w", e.Path, err)
	}
	return io.NopCloser(exactReader(rd, e.Size, e.Path)), nil
}
