package aff4

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
	"unsafe"
)

// zipWriter writes the ZIP64 container of a volume (stored members only, as AFF4 wants).
//
// archive/zip cannot reopen a partial archive and continue it, which a paused acquisition needs:
// its central directory lives only in the writer's memory. This writer keeps the central-directory
// records itself, and on a WriterAt it writes every member with a complete local header (a member
// streamed without a known size gets its CRC and size patched into the header when it ends), so
// the members of a partial container can be rebuilt from the local headers on disk (scanMembers)
// and the whole central directory is written at close. On a plain io.Writer it streams members of
// unknown size with data descriptors instead, and cannot be resumed.
//
// On a WriterAt the buffer keeps the container's 4 KiB blocks in place: the byte at a file offset
// sits at the same offset within its block in memory, and only whole blocks are written while
// members stream. A local target writes page-aligned blocks at page-aligned offsets straight to
// disk (O_DIRECT) and everything else through the page cache; before this, every write after the
// first bevy was off by its index and header, and copying into the page cache took 55 % of an AFF4
// acquisition's CPU (perf, 1 GiB of random data).
type zipWriter struct {
	at      io.WriterAt // nil: sequential writer w
	w       io.Writer
	mem     []byte // the buffer's storage, its first byte 4 KiB-aligned
	lead    int    // index in mem of buf[0]: for a WriterAt, the offset of buf[0] in its 4 KiB block
	buf     []byte // bytes not yet written, starting at off-len(buf); a slice of mem from lead
	off     int64  // container bytes so far, buffered included
	dosTime uint16
	dosDate uint16
	members []zipMember
	open    *zipMember // member being streamed, nil if none
}

// zipMember is what the central directory says about one member.
type zipMember struct {
	name string
	off  int64 // local header offset
	crc  uint32
	size int64 // stored: compressed size = uncompressed size
	desc bool  // data descriptor after the data (sequential writer)
}

const (
	zipLocalSig   = 0x04034b50
	zipCentralSig = 0x02014b50
	zipDescSig    = 0x08074b50
	zipEndSig     = 0x06054b50
	zip64EndSig   = 0x06064b50
	zip64LocSig   = 0x07064b50
	zipLocalLen   = 30
	zipFlagDesc   = 0x8
	zipVersion20  = 20
	zipVersion45  = 45 // ZIP64
	zipBufSize    = 1 << 20
	zipBlock      = 4096 // the page size direct I/O wants offsets, lengths and memory aligned to
	// maxMember bounds one member: local headers hold 32-bit sizes, so members stay below 4 GiB.
	maxMember = 1<<32 - 1
)

func newZipWriter(w io.Writer, modTime time.Time) *zipWriter {
	m := make([]byte, zipBufSize+2*zipBlock)
	skip := int(-uintptr(unsafe.Pointer(&m[0])) & (zipBlock - 1))
	z := &zipWriter{w: w, mem: m[skip : skip+zipBufSize+zipBlock : skip+zipBufSize+zipBlock]}
	z.buf = z.mem[:0]
	if at, ok := w.(io.WriterAt); ok {
		z.at = at
	}
	z.dosDate, z.dosTime = dosDateTime(modTime)
	return z
}

// dosDateTime is the MS-DOS date and time of t (2-second resolution, years from 1980).
func dosDateTime(t time.Time) (date, tm uint16) {
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	tm = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return
}

// flush writes the whole buffer out (before a header is patched, at a checkpoint, at close).
func (z *zipWriter) flush() error {
	if len(z.buf) == 0 {
		return nil
	}
	var err error
	if z.at != nil {
		err = z.writeOut(z.lead, z.lead+len(z.buf))
	} else {
		_, err = z.w.Write(z.buf)
	}
	z.buf = z.buf[:0]
	return err
}

// spill makes room in a full buffer: on a WriterAt it writes the whole blocks and keeps the last,
// partial one at the start of mem, so the next write starts at a block boundary too.
func (z *zipWriter) spill() error {
	if z.at == nil {
		return z.flush()
	}
	end := z.lead + len(z.buf)
	keep := end % zipBlock
	if err := z.writeOut(z.lead, end-keep); err != nil {
		return err
	}
	copy(z.mem, z.mem[end-keep:end])
	z.lead, z.buf = 0, z.mem[:keep]
	return nil
}

// writeOut writes mem[from:to], which starts at buf, in up to three pieces: the rest of a first
// partial block, the whole blocks (aligned in the file and in memory alike), a last partial block.
func (z *zipWriter) writeOut(from, to int) error {
	at := z.off - int64(len(z.buf)) - int64(z.lead) // file offset of mem[0]
	up := min(to, (from+zipBlock-1)/zipBlock*zipBlock)
	down := max(up, to/zipBlock*zipBlock)
	for _, r := range [3][2]int{{from, up}, {up, down}, {down, to}} {
		if r[0] == r[1] {
			continue
		}
		if _, err := z.at.WriteAt(z.mem[r[0]:r[1]], at+int64(r[0])); err != nil {
			return err
		}
	}
	return nil
}

func (z *zipWriter) write(p []byte) error {
	if len(z.buf) == 0 && z.at != nil {
		// Place the next byte at its file offset's position within a block.
		z.lead = int(z.off % zipBlock)
		z.buf = z.mem[z.lead:z.lead]
	}
	for len(p) > 0 {
		if len(z.buf) == cap(z.buf) {
			if err := z.spill(); err != nil {
				return err
			}
		}
		n := copy(z.buf[len(z.buf):cap(z.buf)], p)
		z.buf = z.buf[:len(z.buf)+n]
		z.off += int64(n)
		p = p[n:]
	}
	return nil
}

func (z *zipWriter) localHeader(m *zipMember, flags uint16) []byte {
	h := make([]byte, zipLocalLen, zipLocalLen+len(m.name))
	binary.LittleEndian.PutUint32(h[0:], zipLocalSig)
	binary.LittleEndian.PutUint16(h[4:], zipVersion20)
	binary.LittleEndian.PutUint16(h[6:], flags)
	binary.LittleEndian.PutUint16(h[8:], 0) // stored
	binary.LittleEndian.PutUint16(h[10:], z.dosTime)
	binary.LittleEndian.PutUint16(h[12:], z.dosDate)
	binary.LittleEndian.PutUint32(h[14:], m.crc)
	binary.LittleEndian.PutUint32(h[18:], uint32(m.size))
	binary.LittleEndian.PutUint32(h[22:], uint32(m.size))
	binary.LittleEndian.PutUint16(h[26:], uint16(len(m.name)))
	return append(h, m.name...)
}

// member writes a whole member whose data is known.
func (z *zipWriter) member(name string, data []byte) error {
	if z.open != nil {
		return errors.New("zip: member inside a streamed member")
	}
	if int64(len(data)) > maxMember || len(name) > 0xffff {
		return fmt.Errorf("zip: member %s too large", name)
	}
	m := zipMember{name: name, off: z.off, crc: crc32.ChecksumIEEE(data), size: int64(len(data))}
	if err := z.write(z.localHeader(&m, 0)); err != nil {
		return err
	}
	if err := z.write(data); err != nil {
		return err
	}
	z.members = append(z.members, m)
	return nil
}

// begin starts a member streamed through writeData until end.
func (z *zipWriter) begin(name string) error {
	if z.open != nil {
		return errors.New("zip: member inside a streamed member")
	}
	m := &zipMember{name: name, off: z.off, desc: z.at == nil}
	var flags uint16
	if m.desc {
		flags = zipFlagDesc
	}
	if err := z.write(z.localHeader(m, flags)); err != nil {
		return err
	}
	z.open = m
	return nil
}

func (z *zipWriter) writeData(p []byte) error {
	m := z.open
	if m.size+int64(len(p)) > maxMember {
		return fmt.Errorf("zip: member %s exceeds 4 GiB", m.name)
	}
	m.crc = crc32.Update(m.crc, crc32.IEEETable, p)
	m.size += int64(len(p))
	return z.write(p)
}

// end finishes the streamed member: a data descriptor, or the CRC and size patched into its header.
func (z *zipWriter) end() error {
	m := z.open
	z.open = nil
	if m.desc {
		d := make([]byte, 16)
		binary.LittleEndian.PutUint32(d[0:], zipDescSig)
		binary.LittleEndian.PutUint32(d[4:], m.crc)
		binary.LittleEndian.PutUint32(d[8:], uint32(m.size))
		binary.LittleEndian.PutUint32(d[12:], uint32(m.size))
		if err := z.write(d); err != nil {
			return err
		}
	} else {
		if err := z.flush(); err != nil {
			return err
		}
		var p [12]byte
		binary.LittleEndian.PutUint32(p[0:], m.crc)
		binary.LittleEndian.PutUint32(p[4:], uint32(m.size))
		binary.LittleEndian.PutUint32(p[8:], uint32(m.size))
		if _, err := z.at.WriteAt(p[:], m.off+14); err != nil {
			return err
		}
	}
	z.members = append(z.members, *m)
	return nil
}

// close writes the central directory (ZIP64 records when offsets or counts need them) and the
// end record with comment, and flushes. It does not close the underlying writer.
func (z *zipWriter) close(comment string) error {
	if z.open != nil {
		if err := z.end(); err != nil {
			return err
		}
	}
	cdStart := z.off
	for _, m := range z.members {
		zip64 := m.off >= 0xffffffff
		version := uint16(zipVersion20)
		var extra []byte
		if zip64 {
			version = zipVersion45
			extra = binary.LittleEndian.AppendUint16(extra, 0x0001)
			extra = binary.LittleEndian.AppendUint16(extra, 8)
			extra = binary.LittleEndian.AppendUint64(extra, uint64(m.off))
		}
		var flags uint16
		if m.desc {
			flags = zipFlagDesc
		}
		h := make([]byte, 46, 46+len(m.name)+len(extra))
		binary.LittleEndian.PutUint32(h[0:], zipCentralSig)
		binary.LittleEndian.PutUint16(h[4:], 3<<8|version) // made by: Unix
		binary.LittleEndian.PutUint16(h[6:], version)
		binary.LittleEndian.PutUint16(h[8:], flags)
		binary.LittleEndian.PutUint16(h[12:], z.dosTime)
		binary.LittleEndian.PutUint16(h[14:], z.dosDate)
		binary.LittleEndian.PutUint32(h[16:], m.crc)
		binary.LittleEndian.PutUint32(h[20:], uint32(m.size))
		binary.LittleEndian.PutUint32(h[24:], uint32(m.size))
		binary.LittleEndian.PutUint16(h[28:], uint16(len(m.name)))
		binary.LittleEndian.PutUint16(h[30:], uint16(len(extra)))
		binary.LittleEndian.PutUint32(h[38:], 0o644<<16) // external attributes: a regular file
		binary.LittleEndian.PutUint32(h[42:], uint32(min(m.off, 0xffffffff)))
		h = append(append(h, m.name...), extra...)
		if err := z.write(h); err != nil {
			return err
		}
	}
	cdEnd := z.off
	n, cdSize := int64(len(z.members)), cdEnd-cdStart
	if n >= 0xffff || cdStart >= 0xffffffff || cdSize >= 0xffffffff {
		r := make([]byte, 56+20)
		binary.LittleEndian.PutUint32(r[0:], zip64EndSig)
		binary.LittleEndian.PutUint64(r[4:], 44)
		binary.LittleEndian.PutUint16(r[12:], 3<<8|zipVersion45)
		binary.LittleEndian.PutUint16(r[14:], zipVersion45)
		binary.LittleEndian.PutUint64(r[24:], uint64(n))
		binary.LittleEndian.PutUint64(r[32:], uint64(n))
		binary.LittleEndian.PutUint64(r[40:], uint64(cdSize))
		binary.LittleEndian.PutUint64(r[48:], uint64(cdStart))
		binary.LittleEndian.PutUint32(r[56:], zip64LocSig)
		binary.LittleEndian.PutUint64(r[64:], uint64(cdEnd))
		binary.LittleEndian.PutUint32(r[72:], 1)
		if err := z.write(r); err != nil {
			return err
		}
	}
	if len(comment) > 0xffff {
		return errors.New("zip: comment too long")
	}
	e := make([]byte, 22, 22+len(comment))
	binary.LittleEndian.PutUint32(e[0:], zipEndSig)
	binary.LittleEndian.PutUint16(e[8:], uint16(min(n, 0xffff)))
	binary.LittleEndian.PutUint16(e[10:], uint16(min(n, 0xffff)))
	binary.LittleEndian.PutUint32(e[12:], uint32(min(cdSize, 0xffffffff)))
	binary.LittleEndian.PutUint32(e[16:], uint32(min(cdStart, 0xffffffff)))
	binary.LittleEndian.PutUint16(e[20:], uint16(len(comment)))
	if err := z.write(append(e, comment...)); err != nil {
		return err
	}
	return z.flush()
}

// scanMembers rebuilds the member list of a container written on a WriterAt by walking its local
// headers from the start up to end, which must be the end of a member. It is given hostile
// bytes (a file on a target) and only returns errors.
func scanMembers(r io.ReaderAt, end int64) ([]zipMember, error) {
	var out []zipMember
	// One read takes a header with the usual name (AFF4 member names are about 60 bytes).
	buf := make([]byte, zipLocalLen+256)
	for off := int64(0); off < end; {
		n, err := r.ReadAt(buf, off)
		if n < zipLocalLen {
			return nil, fmt.Errorf("zip: local header at %d: %w", off, cmp.Or(err, io.ErrUnexpectedEOF))
		}
		h := buf[:n]
		if binary.LittleEndian.Uint32(h[0:]) != zipLocalSig {
			return nil, fmt.Errorf("zip: no local header at %d", off)
		}
		flags := binary.LittleEndian.Uint16(h[6:])
		if flags&zipFlagDesc != 0 || binary.LittleEndian.Uint16(h[8:]) != 0 {
			return nil, fmt.Errorf("zip: member at %d was not written by a resumable writer", off)
		}
		csize := int64(binary.LittleEndian.Uint32(h[18:]))
		if usize := int64(binary.LittleEndian.Uint32(h[22:])); usize != csize {
			return nil, fmt.Errorf("zip: stored member at %d has sizes %d and %d", off, csize, usize)
		}
		nlen, elen := int64(binary.LittleEndian.Uint16(h[26:])), int64(binary.LittleEndian.Uint16(h[28:]))
		var name []byte
		if zipLocalLen+nlen <= int64(n) {
			name = h[zipLocalLen : zipLocalLen+nlen]
		} else {
			name = make([]byte, nlen)
			if _, err := r.ReadAt(name, off+zipLocalLen); err != nil {
				return nil, fmt.Errorf("zip: name at %d: %w", off, err)
			}
		}
		out = append(out, zipMember{name: string(name), off: off, crc: binary.LittleEndian.Uint32(h[14:]), size: csize})
		off += zipLocalLen + nlen + elen + csize
		if off > end {
			return nil, fmt.Errorf("zip: member %s runs past %d", name, end)
		}
	}
	return out, nil
}
