package logical

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
)

const sectorSize = 512

// maxLogical bounds the EBR chain: a looping chain on a corrupt disk must not spin forever.
const maxLogical = 128

// Volumes parses MBR (including extended/logical partitions) or GPT (protective MBR, then GPT
// at LBA 1), or detects a bare file system at offset 0. Partitions are numbered as Linux and
// sfdisk do: primaries 1-4 by slot, logicals from 5 in chain order, GPT by entry slot.
// Partitions whose file system is unknown are still returned, with FS "".
func Volumes(src io.ReaderAt, size int64) (vols []Volume, err error) {
	if size < sectorSize {
		return nil, fmt.Errorf("volumes: source of %d bytes: %w", size, ErrNoVolumes)
	}
	// A FAT or NTFS boot sector also ends in 55 AA, so a recognised file system at offset 0
	// wins over reading its boot code as a partition table.
	head := io.NewSectionReader(src, 0, size)
	if fs, label := detectFS(head); fs != "" && fs != "ext2" && fs != "ext3" && fs != "ext4" {
		return []Volume{{Offset: 0, Size: size, Scheme: "none", FS: fs, Label: label}}, nil
	}
	mbr := make([]byte, sectorSize)
	if _, err := src.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("volumes: read sector 0: %w", err)
	}
	if parts, ok := parseMBRTable(mbr, 0, size); ok {
		if slices.ContainsFunc(parts, func(p mbrPart) bool { return p.typ == 0xee }) {
			vols, err = gptVolumes(src, size)
		} else {
			vols, err = mbrVolumes(src, size, parts)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(vols) == 0 {
		// ext has no boot-sector signature; it is checked last so that a disk whose first
		// partition starts at 0 is not mistaken for a bare ext volume.
		if fs, label := detectFS(head); fs != "" {
			return []Volume{{Offset: 0, Size: size, Scheme: "none", FS: fs, Label: label}}, nil
		}
		if vols == nil {
			return nil, fmt.Errorf("volumes: %w", ErrNoVolumes)
		}
	}
	for i := range vols {
		vols[i].FS, vols[i].Label = detectFS(io.NewSectionReader(src, vols[i].Offset, vols[i].Size))
	}
	return vols, nil
}

type mbrPart struct {
	slot       int
	typ        byte
	start, len int64 // sectors, relative to the table's base
}

// parseMBRTable reads the four entries of an MBR or EBR sector. ok is false when the sector
// is not a partition table (no 55 AA, bad boot flag, or entries outside the disk).
func parseMBRTable(sec []byte, base, size int64) (parts []mbrPart, ok bool) {
	if sec[510] != 0x55 || sec[511] != 0xaa {
		return nil, false
	}
	for i := 0; i < 4; i++ {
		e := sec[446+16*i : 446+16*i+16]
		if e[0] != 0 && e[0] != 0x80 {
			return nil, false
		}
		p := mbrPart{slot: i + 1, typ: e[4],
			start: int64(binary.LittleEndian.Uint32(e[8:])), len: int64(binary.LittleEndian.Uint32(e[12:]))}
		if p.typ == 0 || p.len == 0 {
			continue
		}
		if p.typ != 0xee && (base+p.start)*sectorSize >= size {
			return nil, false
		}
		parts = append(parts, p)
	}
	return parts, true
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

func mbrVolumes(src io.ReaderAt, size int64, parts []mbrPart) ([]Volume, error) {
	vols := []Volume{}
	add := func(idx int, t byte, startSect, nSect int64) {
		off, n := startSect*sectorSize, nSect*sectorSize
		if off+n > size { // a table larger than the image (truncated acquisition): keep what exists
			n = size - off
		}
		vols = append(vols, Volume{Index: idx, Offset: off, Size: n, Scheme: "mbr", PartType: fmt.Sprintf("0x%02x", t)})
	}
	for _, p := range parts {
		if !isExtended(p.typ) {
			add(p.slot, p.typ, p.start, p.len)
		}
	}
	for _, p := range parts {
		if !isExtended(p.typ) {
			continue
		}
		// Logical partitions: each EBR's first entry is relative to that EBR, its second entry
		// points to the next EBR relative to the start of the extended partition.
		ext := p.start
		ebr := ext
		seen := map[int64]bool{}
		idx := 5
		for n := 0; n < maxLogical && !seen[ebr]; n++ {
			seen[ebr] = true
			sec := make([]byte, sectorSize)
			if _, err := src.ReadAt(sec, ebr*sectorSize); err != nil {
				return vols, fmt.Errorf("volumes: read EBR at sector %d: %w", ebr, err)
			}
			lp, ok := parseMBRTable(sec, ebr, size)
			if !ok {
				break
			}
			next := int64(-1)
			for _, e := range lp {
				switch {
				case isExtended(e.typ):
					if next < 0 {
						next = ext + e.start
					}
				case e.slot == 1:
					add(idx, e.typ, ebr+e.start, e.len)
					idx++
				}
			}
			if next < 0 {
				break
			}
			ebr = next
		}
		break // only one extended partition is meaningful
	}
	sortVolumes(vols)
	return vols, nil
}

func sortVolumes(v []Volume) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].Index < v[j-1].Index; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// gptVolumes reads the primary GPT header; on a bad header it falls back to the backup at the
// last LBA (a wiped or damaged primary is common on evidence).
func gptVolumes(src io.ReaderAt, size int64) ([]Volume, error) {
	var firstErr error
	for _, lba := range []int64{1, size/sectorSize - 1} {
		vols, err := readGPT(src, size, lba)
		if err == nil {
			return vols, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func readGPT(src io.ReaderAt, size, lba int64) ([]Volume, error) {
	hdr := make([]byte, sectorSize)
	if _, err := src.ReadAt(hdr, lba*sectorSize); err != nil {
		return nil, fmt.Errorf("gpt: read header at LBA %d: %w", lba, err)
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return nil, fmt.Errorf("gpt: no header at LBA %d", lba)
	}
	// LBAs are unsigned 64-bit: compare them with the disk's sector count before any arithmetic,
	// or a hostile value wraps to a negative offset.
	sectors := uint64(size / sectorSize)
	entLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := int64(binary.LittleEndian.Uint32(hdr[80:]))
	esz := int64(binary.LittleEndian.Uint32(hdr[84:]))
	if esz < 128 || esz > 4096 || count <= 0 || count > 4096 || entLBA >= sectors || int64(entLBA)*sectorSize+count*esz > size {
		return nil, fmt.Errorf("gpt: implausible entry array at LBA %d (%d entries of %d bytes)", entLBA, count, esz)
	}
	arr := make([]byte, count*esz)
	if _, err := src.ReadAt(arr, int64(entLBA)*sectorSize); err != nil {
		return nil, fmt.Errorf("gpt: read entries: %w", err)
	}
	vols := []Volume{}
	for i := range count {
		e := arr[i*esz : (i+1)*esz]
		if allZero(e[:16]) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[32:])
		last := binary.LittleEndian.Uint64(e[40:])
		if last < first || first >= sectors {
			continue
		}
		last = min(last, sectors-1)
		off, n := int64(first)*sectorSize, int64(last-first+1)*sectorSize
		if off+n > size {
			n = size - off
		}
		vols = append(vols, Volume{Index: int(i) + 1, Offset: off, Size: n, Scheme: "gpt",
			PartType: guidString(e[:16]), PartName: utf16Name(e[56:128])})
	}
	return vols, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// guidString formats an on-disk (mixed-endian) GUID the way sfdisk and gdisk print it.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]),
		binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// detectFS identifies a file system by its signatures and returns its label when cheap to
// find. It never returns an error: an unreadable or unknown volume is simply "".
func detectFS(r *io.SectionReader) (fs, label string) {
	b := make([]byte, 2048)
	n, _ := r.ReadAt(b, 0)
	b = b[:n]
	if len(b) >= 512 {
		switch {
		case string(b[3:11]) == "NTFS    ":
			return "ntfs", ntfsLabel(r)
		case string(b[3:11]) == "EXFAT   ":
			return "exfat", exfatVolumeLabel(r)
		}
		switch {
		case string(b[3:11]) == "-FVE-FS-":
			return "bitlocker", ""
		case string(b[3:7]) == "ReFS":
			return "refs", ""
		case string(b[0:6]) == "LUKS\xba\xbe":
			return "luks", ""
		case string(b[0:4]) == "XFSB":
			return "xfs", ""
		case string(b[32:36]) == "NXSB":
			return "apfs", ""
		}
		if t, err := fatType(b); err == nil {
			return t, fatBPBLabel(b, t)
		}
	}
	if len(b) >= 1026 && (string(b[1024:1026]) == "H+" || string(b[1024:1026]) == "HX") {
		return "hfsplus", ""
	}
	if len(b) >= 2048 && binary.LittleEndian.Uint16(b[1024+56:]) == 0xef53 {
		sb := b[1024:]
		compat := binary.LittleEndian.Uint32(sb[92:])
		incompat := binary.LittleEndian.Uint32(sb[96:])
		roCompat := binary.LittleEndian.Uint32(sb[100:])
		label := strings.TrimRight(string(sb[120:136]), "\x00")
		// ext4-only features: extents, 64bit, flex_bg, huge_file, gdt_csum, dir_nlink,
		// extra_isize, metadata_csum. This is how blkid tells them apart too.
		switch {
		case incompat&(0x40|0x80|0x200) != 0 || roCompat&(0x8|0x10|0x20|0x40|0x400) != 0:
			return "ext4", label
		case compat&0x4 != 0:
			return "ext3", label
		default:
			return "ext2", label
		}
	}
	// Recognised so that a task can say what it met; none of these is read (see OpenFS).
	m := make([]byte, 8)
	if n, _ := r.ReadAt(m, 0x10040); n == 8 && string(m) == "_BHRfS_M" {
		return "btrfs", ""
	}
	return "", ""
}
