package tasks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/formats/raw"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/target"
)

// imageCheckpoint is what an imaging task stores to resume: the pipeline's checkpoint, plus what
// proves, before the resume touches anything, that the files on the target are still this task's
// (File) and that the drive on the port is still the drive imaged so far (Source). Both are
// omitted in records written before they existed; such a checkpoint resumes without the proof.
type imageCheckpoint struct {
	pipeline.Checkpoint
	File   *fileProof   `json:"file,omitempty"`
	Source *sourcePrint `json:"source,omitempty"`
}

// fileProof describes the image file the checkpoint ends in, as it was at the checkpoint: its
// consistent length, the hash of the bytes before that length (the last chunk and tables), and for
// E01 the set identifier every segment carries.
type fileProof struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	TailLen int64  `json:"tailLen"`
	Tail    string `json:"tail"`            // SHA-256 of [Size-TailLen, Size)
	SetID   []byte `json:"setId,omitempty"` // E01
}

// sourcePrint fingerprints the source over the range already imaged.
type sourcePrint struct {
	Size       int64          `json:"size"`
	SectorSize int            `json:"sectorSize"`
	Sectors    []sectorSample `json:"sectors"`
}

type sectorSample struct {
	LBA    int64  `json:"lba"`
	SHA256 string `json:"sha256"`
}

const (
	proofTail     = 64 << 10 // bytes of the image file hashed before the checkpoint's end
	printSamples  = 8        // source sectors hashed over the imaged range
	rawCompareMax = 8        // sectors of a raw image compared with the source on resume
)

// checkpointTail names the file a format's checkpoint ends in and the length of it that is
// consistent; ok is false for formats whose state does not say (the file proof is then omitted).
func checkpointTail(typ options.Format, base string, format json.RawMessage) (name string, size int64, ok bool) {
	switch typ {
	case options.Raw:
		var st raw.State
		if json.Unmarshal(format, &st) == nil {
			return base + ".raw", st.Offset, true
		}
	case options.E01:
		var st ewf.State
		if json.Unmarshal(format, &st) == nil && st.Segment > 0 {
			return ewf.SegmentName(base, st.Segment), st.Offset, true
		}
		// AFF4 has no tail proof: the open bevy's local header, before the checkpoint's offset,
		// is completed when the bevy ends. reopenImage proves the container through proveAFF4 as it reopens it
		// (volume URN, size, members) instead.
	}
	return "", 0, false
}

// makeFileProof reads back the file a checkpoint ends in. The bytes before the checkpoint's
// offset are never rewritten by the formats, so reading them after the writer went on is safe.
func makeFileProof(tgt target.Target, typ options.Format, base string, format json.RawMessage) (*fileProof, error) {
	name, size, ok := checkpointTail(typ, base, format)
	if !ok {
		return nil, nil
	}
	p := &fileProof{Name: name, Size: size, TailLen: min(size, proofTail)}
	r, err := tgt.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", name, err)
	}
	defer r.Close()
	if p.Tail, err = hashRange(r, size-p.TailLen, p.TailLen); err != nil {
		return nil, fmt.Errorf("read back %s: %w", name, err)
	}
	if typ == options.E01 {
		first := r
		if seg1 := ewf.SegmentName(base, 1); seg1 != name {
			f, err := tgt.Open(seg1)
			if err != nil {
				return nil, fmt.Errorf("read back %s: %w", seg1, err)
			}
			defer f.Close()
			first = f
		}
		if p.SetID, err = ewf.SegmentSetID(first); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func hashRange(r io.ReaderAt, off, n int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, off, n)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// proveFile checks, reading only, that the image file on the target is the one the checkpoint
// describes; an error names what differs.
func proveFile(tgt target.Target, typ options.Format, base string, p *fileProof) error {
	r, err := tgt.Open(p.Name)
	if err != nil {
		return fmt.Errorf("%s is missing: %v", tgt.Display(p.Name), err)
	}
	defer r.Close()
	if r.Size() < p.Size {
		return fmt.Errorf("%s is %d bytes, shorter than the %d bytes the task had written", tgt.Display(p.Name), r.Size(), p.Size)
	}
	if typ == options.E01 {
		first := r
		if seg1 := ewf.SegmentName(base, 1); seg1 != p.Name {
			f, err := tgt.Open(seg1)
			if err != nil {
				return fmt.Errorf("%s is missing: %v", tgt.Display(seg1), err)
			}
			defer f.Close()
			first = f
		}
		id, err := ewf.SegmentSetID(first)
		if err != nil || !bytes.Equal(id, p.SetID) {
			return fmt.Errorf("%s belongs to another E01 image (set identifier %x, the task's is %x)", tgt.Display(ewf.SegmentName(base, 1)), id, p.SetID)
		}
	}
	sum, err := hashRange(r, p.Size-p.TailLen, p.TailLen)
	if err != nil {
		return fmt.Errorf("read %s: %v", tgt.Display(p.Name), err)
	}
	if sum != p.Tail {
		return fmt.Errorf("the last %d bytes the task wrote to %s have changed", p.TailLen, tgt.Display(p.Name))
	}
	return nil
}

// makeSourcePrint hashes a few sectors spread over the first imaged bytes of the source.
// Sectors that cannot be read are left out: a failing drive has them, and they prove nothing.
func makeSourcePrint(rd io.ReaderAt, id hal.Identity, imaged int64) *sourcePrint {
	ss := int64(max(id.SectorSize, 512))
	p := &sourcePrint{Size: id.Size, SectorSize: int(ss)}
	n := imaged / ss
	if n <= 0 {
		return p
	}
	buf := make([]byte, ss)
	seen := map[int64]bool{}
	for i := range int64(printSamples) {
		lba := (n - 1) * i / (printSamples - 1)
		if seen[lba] {
			continue
		}
		seen[lba] = true
		if _, err := rd.ReadAt(buf, lba*ss); err != nil {
			continue
		}
		s := sha256.Sum256(buf)
		p.Sectors = append(p.Sectors, sectorSample{LBA: lba, SHA256: hex.EncodeToString(s[:])})
	}
	return p
}

// proveSource re-reads the fingerprinted sectors of the drive now on the port.
func proveSource(rd io.ReaderAt, id hal.Identity, p *sourcePrint) error {
	if id.Size != p.Size || max(id.SectorSize, 512) != p.SectorSize {
		return fmt.Errorf("the drive on the port has %d bytes in %d-byte sectors, the drive imaged so far had %d bytes in %d-byte sectors", id.Size, max(id.SectorSize, 512), p.Size, p.SectorSize)
	}
	buf := make([]byte, p.SectorSize)
	for _, s := range p.Sectors {
		if _, err := rd.ReadAt(buf, s.LBA*int64(p.SectorSize)); err != nil {
			if errors.Is(err, hal.ErrGone) {
				return fmt.Errorf("the drive is gone: %v", err)
			}
			continue // unreadable now: proves nothing either way
		}
		if sum := sha256.Sum256(buf); hex.EncodeToString(sum[:]) != s.SHA256 {
			return fmt.Errorf("sector %d of the drive on the port differs from the one imaged so far: it is another drive (or its content changed)", s.LBA)
		}
	}
	return nil
}

// proveRawContent compares a few sectors of a raw image file with the source: a raw image at a
// checkpoint near its start has too few bytes for its own tail to prove anything.
func proveRawContent(tgt target.Target, name string, rd io.ReaderAt, id hal.Identity) error {
	r, err := tgt.Open(name)
	if err != nil {
		return fmt.Errorf("%s is missing: %v", tgt.Display(name), err)
	}
	defer r.Close()
	ss := int64(max(id.SectorSize, 512))
	n := min(r.Size(), id.Size) / ss
	if n <= 0 {
		return nil
	}
	a, b := make([]byte, ss), make([]byte, ss)
	for i := range int64(rawCompareMax) {
		lba := (n - 1) * i / (rawCompareMax - 1)
		if _, err := rd.ReadAt(a, lba*ss); err != nil {
			continue
		}
		if _, err := r.ReadAt(b, lba*ss); err != nil {
			return fmt.Errorf("read %s: %v", tgt.Display(name), err)
		}
		// Zeros are what an unreadable sector became; the drive may read it now.
		if !bytes.Equal(a, b) && len(bytes.TrimLeft(b, "\x00")) > 0 {
			return fmt.Errorf("%s holds other data than this drive at sector %d: it is not this task's image", tgt.Display(name), lba)
		}
	}
	return nil
}
