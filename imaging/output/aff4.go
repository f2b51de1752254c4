package output

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/evidenced/evidenced/formats/aff4"
	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/errkind"
)

// aff4Writer gives the pipeline the writer's checkpoints in their JSON form (an aff4.State).
type aff4Writer struct{ *aff4.Writer }

func (w aff4Writer) Checkpoint() (json.RawMessage, error) {
	st, err := w.Writer.Checkpoint()
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

func aff4State(cp *pipeline.Checkpoint) (aff4.State, error) {
	var st aff4.State
	if err := json.Unmarshal(cp.Format, &st); err != nil {
		return st, fmt.Errorf("AFF4 checkpoint: %w", err)
	}
	return st, nil
}

// proveAFF4 checks, reading only, that the file of a paused AFF4 task is the container its
// checkpoint was taken of (aff4.State.Check: the volume URN, the size, the members up to the open
// bevy). It is the one proof a resume makes before it touches the file; a file that is missing or
// another's is a Conflict, and nothing was changed.
func proveAFF4(tgt target.Target, name string, st aff4.State) error {
	rf, err := tgt.Open(name)
	if err != nil {
		return errkind.New(errkind.Conflict, "%s is missing: %v; nothing was changed", tgt.Display(name), err)
	}
	defer rf.Close()
	if err := st.Check(rf, rf.Size()); err != nil {
		return errkind.New(errkind.Conflict, "%s is not the paused task's image: %v; nothing was changed", tgt.Display(name), err)
	}
	return nil
}

func openAFF4(spec Spec, tgt target.Target, cp *pipeline.Checkpoint) (Image, error) {
	o := spec.Options
	comp := o.AFF4.Compression
	if comp == "" {
		comp = "lz4"
	}
	// Refuse a bad method before any file exists: a refused image leaves nothing behind.
	if _, err := aff4.CompressionIRI(comp); err != nil {
		return nil, err
	}
	// The acquisition time is fixed at the start: a resumed container keeps its creation time.
	acquired := spec.AcquiredAt
	opt := aff4.Options{
		Compression: comp, Hashes: o.Hashes,
		CaseNumber: o.Case.Number, EvidenceNumber: o.Case.Evidence, Examiner: o.Case.Examiner, Description: o.Case.Description,
		Model: spec.Identity.Model, Serial: spec.Identity.Serial, Size: spec.Identity.Size, SectorSize: spec.Identity.SectorSize,
		Tool: spec.Software, AcquiredAt: acquired,
	}
	name := spec.Base + ".aff4"
	var (
		f   target.File
		w   *aff4.Writer
		err error
	)
	if cp != nil {
		if f, w, err = resumeAFF4(tgt, name, opt, cp); err != nil {
			return nil, err
		}
	} else {
		if f, err = tgt.Create(name); err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
		if w, err = aff4.NewWriter(f, opt); err != nil {
			f.Close()
			tgt.Remove(name)
			return nil, err
		}
	}
	return &aff4Image{w: w, f: f, tgt: tgt, name: name}, nil
}

// aff4Image is an AFF4 container of one image stream.
type aff4Image struct {
	w    *aff4.Writer
	f    target.File
	tgt  target.Target
	name string
}

func (img *aff4Image) Writer() pipeline.ChunkWriter { return aff4Writer{img.w} }
func (img *aff4Image) Pad() int                     { return 0 }

// AddBad records nothing: unreadable ranges stay zero-filled in the stream (as in E01 and raw), so
// the image's hashes equal the acquisition's; they are listed in the report. Mapping them to
// aff4:UnreadableData would make readers return a pattern instead of the hashed zeros.
func (img *aff4Image) AddBad(source.Range, int)             {}
func (img *aff4Image) SetHash(name digest.Name, sum []byte) { img.w.SetHash(name, sum) }
func (img *aff4Image) Files() []string                      { return []string{img.name} }
func (img *aff4Image) ReadBack() (io.Reader, func() error, error) {
	return readBackAFF4(img.tgt, img.name)
}

func (img *aff4Image) Close() error {
	err := img.w.Close()
	if serr := img.f.Sync(); err == nil {
		err = serr
	}
	if cerr := img.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// resumeAFF4 reopens the container of a paused task at its checkpoint: the file must be the
// checkpoint's (proveAFF4); then bytes written after the checkpoint are cut and the writer
// continues the open bevy.
func resumeAFF4(tgt target.Target, name string, opt aff4.Options, cp *pipeline.Checkpoint) (target.File, *aff4.Writer, error) {
	st, err := aff4State(cp)
	if err != nil {
		return nil, nil, err
	}
	if err := proveAFF4(tgt, name, st); err != nil {
		return nil, nil, err
	}
	rf, err := tgt.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("reopen image: %w", err)
	}
	defer rf.Close()
	f, err := tgt.OpenFile(name)
	if err != nil {
		return nil, nil, fmt.Errorf("reopen image: %w", err)
	}
	w, err := aff4.Resume(rf, f, opt, st)
	if err == nil {
		if err = tgt.Truncate(name, st.Offset); err != nil {
			err = fmt.Errorf("cut %s to its checkpoint: %w", name, err)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, w, nil
}

func readBackAFF4(tgt target.Target, name string) (io.Reader, func() error, error) {
	rf, err := tgt.Open(name)
	if err != nil {
		return nil, nil, err
	}
	v, err := aff4.Open(rf, rf.Size())
	if err != nil {
		rf.Close()
		return nil, nil, err
	}
	imgs := v.Images()
	if len(imgs) != 1 {
		rf.Close()
		return nil, nil, fmt.Errorf("AFF4 volume holds %d images, want 1", len(imgs))
	}
	ra, err := imgs[0].Open()
	if err != nil {
		rf.Close()
		return nil, nil, err
	}
	return io.NewSectionReader(ra, 0, imgs[0].Size), rf.Close, nil
}
