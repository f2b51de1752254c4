package tasks

import (
	"fmt"
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

// ImageSpec says what image to write: the task's options (format, compression, hashes, case
// metadata), the file name without extension, when the acquisition started and the source drive's
// identity.
type ImageSpec struct {
	Options    options.Task
	Base       string
	AcquiredAt time.Time // zero: now
	Identity   hal.Identity
	Software   string
}

// OpenImage creates (or, with a checkpoint, reopens) the image files in tgt. The daemon's tasks and
// `evidenced acquire` both write through it.
func OpenImage(spec ImageSpec, tgt target.Target, cp *pipeline.Checkpoint) (*Image, error) {
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

func openRaw(name string, tgt target.Target, cp *pipeline.Checkpoint) (*Image, error) {
	var (
		f   target.File
		w   *raw.Writer
		err error
	)
	if cp != nil {
		if f, err = tgt.OpenFile(name); err != nil {
			return nil, fmt.Errorf("reopen image: %w", err)
		}
		if w, err = raw.Resume(f, raw.DefaultChunkSize, cp.Format); err != nil {
			f.Close()
			return nil, err
		}
	} else {
		if f, err = tgt.Create(name); err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
		w = raw.NewWriter(f, raw.DefaultChunkSize)
	}
	return &Image{
		Writer:  w,
		AddBad:  func(source.Range, int) {},
		SetHash: func(digest.Name, []byte) {},
		Close: func() error {
			// Bytes past the end can remain from before a resume: cut them.
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return tgt.Truncate(name, w.Size())
		},
		Files:    func() []string { return []string{name} },
		ReadBack: func() (io.Reader, func() error, error) { return readBackRaw(tgt, name) },
	}, nil
}

func readBackRaw(tgt target.Target, name string) (io.Reader, func() error, error) {
	r, err := tgt.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return r, r.Close, nil
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
