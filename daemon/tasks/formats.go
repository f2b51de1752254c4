package tasks

import (
	"fmt"
	"io"

	"github.com/evidenced/evidenced/formats/raw"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
)

// FormatAvailable says which image types this build writes.
func FormatAvailable(typ string) bool {
	switch typ {
	case "raw", "e01", "aff4":
		return true
	}
	return false
}

// ImageSpec says what image to write: the type, the file name without extension, the task's
// parameters (e01Case, aff4Comp, ...) and the source drive's identity.
type ImageSpec struct {
	Type     string
	Base     string
	Params   map[string]string
	Identity hal.Identity
	Software string
}

// OpenImage creates (or, with a checkpoint, reopens) the image files in tgt. The daemon's tasks and
// `evidenced acquire` both write through it.
func OpenImage(spec ImageSpec, tgt target.Target, cp *pipeline.Checkpoint) (*Image, error) {
	typ, base := spec.Type, spec.Base
	switch typ {
	case "raw":
		return openRaw(base+".raw", tgt, cp)
	case "e01":
		return openE01(spec, tgt, cp)
	case "aff4":
		return openAFF4(spec, tgt, cp)
	}
	return nil, fmt.Errorf("image type %q is not supported", typ)
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
		SetHash: func(string, []byte) {},
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
func ReadBack(typ, base string, tgt target.Target) (io.Reader, func() error, error) {
	switch typ {
	case "raw":
		return readBackRaw(tgt, base+".raw")
	case "e01":
		return readBackE01(tgt, base)
	case "aff4":
		return readBackAFF4(tgt, base+".aff4")
	}
	return nil, nil, fmt.Errorf("image type %q is not supported", typ)
}
