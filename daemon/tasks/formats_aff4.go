package tasks

import (
	"fmt"
	"io"
	"strings"

	"github.com/evidenced/evidenced/formats/aff4"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
)

func openAFF4(spec ImageSpec, tgt target.Target, cp *pipeline.Checkpoint) (*Image, error) {
	if cp != nil {
		return nil, fmt.Errorf("AFF4 images cannot be resumed")
	}
	o := spec.Options
	name := spec.Base + ".aff4"
	f, err := tgt.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	var hashes []string
	for _, h := range o.Hashes {
		hashes = append(hashes, strings.ToLower(h))
	}
	w, err := aff4.NewWriter(f, aff4.Options{
		Compression: o.AFF4.Compression, Hashes: hashes,
		CaseNumber: o.Case.Number, EvidenceNumber: o.Case.Evidence, Examiner: o.Case.Examiner, Description: o.Case.Description,
		Model: spec.Identity.Model, Serial: spec.Identity.Serial, Size: spec.Identity.Size, SectorSize: spec.Identity.SectorSize,
		Tool: spec.Software, AcquiredAt: spec.AcquiredAt,
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Image{
		Writer: w,
		// Unreadable ranges stay zero-filled in the stream (as in E01 and raw), so the image's
		// hashes equal the acquisition's; they are listed in the report. Mapping them to
		// aff4:UnreadableData would make readers return a pattern instead of the hashed zeros.
		AddBad:  func(source.Range, int) {},
		SetHash: w.SetHash,
		Close: func() error {
			err := w.Close()
			if serr := f.Sync(); err == nil {
				err = serr
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		},
		Files: func() []string { return []string{name} },
		ReadBack: func() (io.Reader, func() error, error) {
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
		},
	}, nil
}
