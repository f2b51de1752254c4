// Package output holds the files a task writes, by format: images of a drive (E01, AFF4, raw)
// that the pipeline writes chunk by chunk, and containers of files (L01, zip) that logical
// imaging adds files to. It creates them on a target, reopens them at a checkpoint, finishes them
// and reads them back for verification. The daemon's tasks and `evidenced acquire` both write
// through it.
package output

import (
	"encoding/hex"
	"fmt"
	"github.com/evidenced/evidenced/formats/ewf"
	"io"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/raw"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
)

// Spec says what image or container to write: the task's options (format, compression, hashes,
// case metadata), the file name without extension, when the acquisition started and the source
// drive's identity.
type Spec struct {
	Options    options.Task
	Base       string
	AcquiredAt time.Time // zero: now
	Identity   hal.Identity
	Software   string
	// Threads place the goroutines of a logical container's writer (an L01's digests and
	// compression); the zero value is the go statement.
	Threads ewf.Threads
}

// Image is an opened image of a drive.
type Image interface {
	// Writer takes the pipeline's chunks; it is a pipeline.Checkpointer when the format can
	// resume.
	Writer() pipeline.ChunkWriter
	// Pad is set when the image stores the stream zero-padded to a multiple of Pad bytes (E01:
	// whole sectors, for `evidenced acquire` of files; drives are whole sectors); see
	// pipeline.Config.Pad.
	Pad() int
	// AddBad records a range the source could not read (formats that list them).
	AddBad(r source.Range, sectorSize int)
	// SetHash records a hash of the stream as stored (formats that store them).
	SetHash(name digest.Name, sum []byte)
	// Close ends the files: after a complete run through Finish, or as they are after a failure.
	Close() error
	// Files names the files written so far, on the target.
	Files() []string
	// ReadBack opens the image's data stream for verification; it never writes.
	ReadBack() (io.Reader, func() error, error)
}

// Finish ends an image whose run completed: it records the unreadable ranges and the hashes of
// the stream as stored (the padded ones when the image pads it) and closes the image.
func Finish(img Image, res pipeline.Result, sectorSize int) error {
	for _, r := range res.BadRanges {
		img.AddBad(r, sectorSize)
	}
	stored := res.Hashes
	if res.PaddedHashes != nil {
		stored = res.PaddedHashes
	}
	for name, sum := range stored {
		b, err := hex.DecodeString(sum)
		if err != nil {
			img.Close()
			return fmt.Errorf("finish image: %s %q: %w", name, sum, err)
		}
		img.SetHash(digest.Name(name), b)
	}
	if err := img.Close(); err != nil {
		return fmt.Errorf("finish image: %w", err)
	}
	return nil
}

// OpenImage creates (or, with a checkpoint, reopens) the image files in tgt.
func OpenImage(spec Spec, tgt target.Target, cp *pipeline.Checkpoint) (Image, error) {
	if spec.AcquiredAt.IsZero() {
		spec.AcquiredAt = time.Now()
	}
	switch spec.Options.Format {
	case options.Raw:
		return openRaw(spec.Base+".raw", tgt, cp)
	case options.E01:
		return openE01(spec, tgt, cp)
	case options.AFF4:
		return openAFF4(spec, tgt, cp)
	}
	return nil, fmt.Errorf("image type %q is not supported", spec.Options.Format)
}

// ReadBack opens a written image for reading its data stream (verification); it never writes.
func ReadBack(typ options.Format, base string, tgt target.Target) (io.Reader, func() error, error) {
	switch typ {
	case options.Raw:
		return readBackRaw(tgt, base+".raw")
	case options.E01:
		return readBackE01(tgt, base)
	case options.AFF4:
		return readBackAFF4(tgt, base+".aff4")
	}
	return nil, nil, fmt.Errorf("image type %q is not supported", typ)
}

// rawImage is a raw (dd) image: the stream as it is, nothing else.
type rawImage struct {
	tgt  target.Target
	name string
	f    target.File
	w    *raw.Writer
}

func openRaw(name string, tgt target.Target, cp *pipeline.Checkpoint) (Image, error) {
	img := &rawImage{tgt: tgt, name: name}
	var err error
	if cp != nil {
		if img.f, err = tgt.OpenFile(name); err != nil {
			return nil, fmt.Errorf("reopen image: %w", err)
		}
		if img.w, err = raw.Resume(img.f, raw.DefaultChunkSize, cp.Format); err != nil {
			img.f.Close()
			return nil, err
		}
	} else {
		if img.f, err = tgt.Create(name); err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
		img.w = raw.NewWriter(img.f, raw.DefaultChunkSize)
	}
	return img, nil
}

func (img *rawImage) Writer() pipeline.ChunkWriter { return img.w }
func (img *rawImage) Pad() int                     { return 0 }
func (img *rawImage) AddBad(source.Range, int)     {}
func (img *rawImage) SetHash(digest.Name, []byte)  {}
func (img *rawImage) Files() []string              { return []string{img.name} }
func (img *rawImage) ReadBack() (io.Reader, func() error, error) {
	return readBackRaw(img.tgt, img.name)
}

func (img *rawImage) Close() error {
	// Bytes past the end can remain from before a resume: cut them.
	if err := img.f.Sync(); err != nil {
		img.f.Close()
		return err
	}
	if err := img.f.Close(); err != nil {
		return err
	}
	return img.tgt.Truncate(img.name, img.w.Size())
}

func readBackRaw(tgt target.Target, name string) (io.Reader, func() error, error) {
	r, err := tgt.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return r, r.Close, nil
}
