// Package ewf writes and reads Expert Witness Compression Format images (E01, EnCase 6 variant),
// the de-facto exchange format for forensic disk images. The writer is built for the imaging
// pipeline: chunks are encoded in parallel (EncodeChunk) and appended in stream order (WriteChunk);
// the reader gives random access to a segment set written by us or by libewf/EnCase.
package ewf

import (
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"strings"
	"time"
)

// Compression is the EWF compression level.
type Compression int

const (
	CompressNone Compression = iota
	CompressEmptyBlock
	CompressFast
	CompressBest
)

// ParseCompression maps the libewf names to a Compression.
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(s) {
	case "none":
		return CompressNone, nil
	case "empty-block":
		return CompressEmptyBlock, nil
	case "fast":
		return CompressFast, nil
	case "best":
		return CompressBest, nil
	}
	return 0, fmt.Errorf("ewf: unknown compression %q", s)
}

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressEmptyBlock:
		return "empty-block"
	case CompressFast:
		return "fast"
	case CompressBest:
		return "best"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// Metadata is the case information kept in the header and header2 sections.
type Metadata struct {
	CaseNumber, EvidenceNumber, Description, Examiner, Notes string
	Model, Serial                                            string
	AcquisitionTime, SystemTime                              time.Time
	OS, Software                                             string
}

// SectorRange is a run of sectors, e.g. unreadable ones listed in the error2 section.
type SectorRange struct{ First, Count int64 }

const (
	descSize      = 76
	fileHdrSize   = 13
	volumeSize    = 1052
	maxTableEntry = 16375 // EnCase 6 limit of entries per table section
	tableHdrSize  = 24
	hashSize      = 36
	digestSize    = 80
	error2HdrSize = 520
	compressedBit = 0x80000000
)

var evfSignature = []byte{'E', 'V', 'F', 0x09, 0x0d, 0x0a, 0xff, 0x00}

// lvfSignature starts the segments of a logical evidence file (L01).
var lvfSignature = []byte{'L', 'V', 'F', 0x09, 0x0d, 0x0a, 0xff, 0x00}

func fileHeader(seg int) []byte {
	b := make([]byte, fileHdrSize)
	copy(b, evfSignature)
	b[8] = 1
	binary.LittleEndian.PutUint16(b[9:], uint16(seg))
	return b
}

// putDescriptor fills a 76-byte section descriptor; next is the absolute offset of the next section.
func putDescriptor(b []byte, typ string, next, size int64) {
	clear(b[:descSize])
	copy(b[:16], typ)
	binary.LittleEndian.PutUint64(b[16:], uint64(next))
	binary.LittleEndian.PutUint64(b[24:], uint64(size))
	binary.LittleEndian.PutUint32(b[72:], adler32.Checksum(b[:72]))
}

// SegmentName returns the file name of segment n (1-based) following libewf's naming:
// E01..E99, then EAA..EZZ, FAA.. and so on.
func SegmentName(base string, n int) string { return segmentName(base, 'E', n) }

// LogicalSegmentName is SegmentName for L01 sets: L01..L99, then LAA..LZZ, MAA...
func LogicalSegmentName(base string, n int) string { return segmentName(base, 'L', n) }

func segmentName(base string, first byte, n int) string {
	if n < 100 {
		return fmt.Sprintf("%s.%c%02d", base, first, n)
	}
	i := n - 100
	return fmt.Sprintf("%s.%c%c%c", base, int(first)+i/(26*26), 'A'+(i/26)%26, 'A'+i%26)
}
