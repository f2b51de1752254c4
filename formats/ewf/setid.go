package ewf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SegmentSetID reads the volume set identifier (the 16 bytes every segment of one image shares)
// from the volume, disk or data section of a segment, complete or not. It walks at most the first
// 64 sections and never trusts an offset that does not move forward.
func SegmentSetID(r io.ReaderAt) ([]byte, error) {
	var hdr [fileHdrSize]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("ewf: read file header: %w", err)
	}
	if !bytes.Equal(hdr[:8], evfSignature) && !bytes.Equal(hdr[:8], lvfSignature) {
		return nil, errors.New("ewf: not an EWF segment (bad signature)")
	}
	off := int64(fileHdrSize)
	for range 64 {
		var d [descSize]byte
		if _, err := r.ReadAt(d[:], off); err != nil {
			return nil, fmt.Errorf("ewf: read section descriptor at %d: %w", off, err)
		}
		typ := string(bytes.TrimRight(d[:16], "\x00"))
		switch typ {
		case "volume", "disk", "data":
			id := make([]byte, 16)
			if _, err := r.ReadAt(id, off+descSize+64); err != nil {
				return nil, fmt.Errorf("ewf: read %s section: %w", typ, err)
			}
			return id, nil
		}
		next := int64(binary.LittleEndian.Uint64(d[16:]))
		if next <= off {
			break
		}
		off = next
	}
	return nil, errors.New("ewf: no volume or data section at the start of the segment")
}
