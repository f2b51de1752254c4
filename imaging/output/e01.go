package output

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
)

// e01Writer gives the pipeline the writer's checkpoints in its JSON form.
type e01Writer struct{ *ewf.Writer }

// e01Image is an E01 segment set.
type e01Image struct {
	w   *ewf.Writer
	tgt target.Target
	// base names the set: base.E01, base.E02, ...
	base string
	pad  int
}

func (img *e01Image) Writer() pipeline.ChunkWriter         { return e01Writer{img.w} }
func (img *e01Image) Pad() int                             { return img.pad }
func (img *e01Image) AddBad(r source.Range, _ int)         { img.w.AddReadError(r.First, r.Count) }
func (img *e01Image) SetHash(name digest.Name, sum []byte) { img.w.SetHash(name, sum) }
func (img *e01Image) Close() error                         { return img.w.Close() }
func (img *e01Image) Files() []string                      { return img.w.Files() }
func (img *e01Image) ReadBack() (io.Reader, func() error, error) {
	return readBackE01(img.tgt, img.base)
}

func (w e01Writer) Checkpoint() (json.RawMessage, error) {
	st, err := w.Writer.Checkpoint()
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

func openE01(spec Spec, tgt target.Target, cp *pipeline.Checkpoint) (Image, error) {
	o := spec.Options
	comp, err := ewf.ParseCompression(o.E01.Compression)
	if err != nil {
		return nil, err
	}
	// The acquisition time is fixed at the start so segments written after a resume carry the same headers.
	now := spec.AcquiredAt
	opt := ewf.Options{
		Metadata: ewf.Metadata{
			CaseNumber: o.Case.Number, EvidenceNumber: o.Case.Evidence, Description: o.Case.Description, Examiner: o.Case.Examiner,
			Notes: o.Case.Notes, Model: spec.Identity.Model, Serial: spec.Identity.Serial,
			AcquisitionTime: now, SystemTime: now, OS: "Linux", Software: spec.Software,
		},
		Compression: comp, MediaSize: spec.Identity.Size, BytesPerSector: uint32(max(spec.Identity.SectorSize, 512)),
		SegmentSize: int64(o.E01.SegmentGB) << 30,
	}
	create := func(name string) (ewf.File, error) { return tgt.Create(name) }
	var w *ewf.Writer
	if cp != nil {
		var st ewf.State
		if err := json.Unmarshal(cp.Format, &st); err != nil {
			return nil, fmt.Errorf("E01 checkpoint: %w", err)
		}
		if err := removeSegmentsAfter(tgt, st.Segment, func(n int) string { return ewf.SegmentName(spec.Base, n) }); err != nil {
			return nil, err
		}
		open := func(name string) (ewf.File, error) { return tgt.OpenFile(name) }
		w, err = ewf.Resume(create, open, tgt.Truncate, spec.Base, opt, st)
	} else {
		w, err = ewf.NewWriter(create, spec.Base, opt)
	}
	if err != nil {
		return nil, err
	}
	return &e01Image{w: w, tgt: tgt, base: spec.Base, pad: int(opt.BytesPerSector)}, nil
}

func readBackE01(tgt target.Target, base string) (io.Reader, func() error, error) {
	r, err := ewf.Open(func(name string) (ewf.ReadFile, error) { return tgt.Open(name) }, base+".E01")
	if err != nil {
		return nil, nil, err
	}
	// A damaged hash, digest or error2 section loses what it held: the image does not verify.
	if err := r.Damage(); err != nil {
		r.Close()
		return nil, nil, err
	}
	return io.NewSectionReader(r, 0, r.Size()), r.Close, nil
}

// removeSegmentsAfter deletes the segments an interrupted run started after its checkpoint's
// segment: the resumed run writes them again, and targets never overwrite.
func removeSegmentsAfter(tgt target.Target, seg int, name func(int) string) error {
	for n := seg + 1; ; n++ {
		if _, err := tgt.Stat(name(n)); err != nil {
			return nil
		}
		if err := tgt.Remove(name(n)); err != nil {
			return fmt.Errorf("remove stale segment %s: %w", name(n), err)
		}
	}
}
