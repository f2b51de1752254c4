package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/hal/recovery"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/output"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// ImageRequest is a validated start-image request. Options are stored with the task and are all
// a resume needs besides the credentials (in Spec, never stored).
type ImageRequest struct {
	Port       hal.Port
	Drive      hal.Drive
	Spec       target.Spec
	Options    options.Task
	CaseID     string
	EvidenceID string
}

// StartImage validates the target, creates the task and starts it. The image files are created
// before the key is answered, and a format that checkpoints gives the task its first checkpoint
// (at byte 0) in the same store write that creates it: every task that shows "paused" resumes.
func (m *Manager) StartImage(ctx context.Context, req ImageRequest) (string, error) {
	var f output.Image
	return m.start(ctx, startSpec{
		kind: KindImage, verb: "imaging", port: req.Port, drive: req.Drive, spec: req.Spec, opts: req.Options,
		caseID: req.CaseID, evidenceID: req.EvidenceID,
		prepare: func(t *store.Task, tgt target.Target) error {
			var err error
			f, err = output.OpenImage(output.Spec{Options: t.Options, Base: t.TargetBase, AcquiredAt: t.AcquiredAt, Identity: req.Drive.Identity(), Software: m.cfg.Software}, tgt, nil)
			if err != nil {
				return err
			}
			c, ok := f.Writer().(pipeline.Checkpointer)
			if !ok {
				return nil
			}
			fs, err := c.Checkpoint()
			if err == nil {
				t.Checkpoint, err = imageCheckpointJSON(t, tgt, req.Drive.Identity(), nil, pipeline.Checkpoint{Format: fs})
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("first checkpoint: %w", err)
			}
			return nil
		},
		run: func(ctx context.Context, t *store.Task, l *live, tgt target.Target) error {
			return m.runImage(ctx, t, l, req.Drive, tgt, f, nil)
		},
	})
}

// imageCheckpoint adds to a pipeline checkpoint what proves, at resume, the image file and the
// source (rd nil: nothing imaged yet to fingerprint).
func imageCheckpointJSON(t *store.Task, tgt target.Target, id hal.Identity, rd io.ReaderAt, c pipeline.Checkpoint) (json.RawMessage, error) {
	ic := imageCheckpoint{Checkpoint: c}
	var err error
	if ic.File, err = makeFileProof(tgt, t.Options.Format, t.TargetBase, c.Format); err != nil {
		return nil, err
	}
	if rd == nil {
		rd = bytes.NewReader(nil)
	}
	ic.Source = makeSourcePrint(rd, id, c.Offset)
	return json.Marshal(ic)
}

// Resume continues a paused imaging task from its last checkpoint. spec carries the credentials,
// which are never stored. Before anything on the target is touched, the image files must prove to
// be this task's and the drive on the port the drive imaged so far; otherwise ErrConflict.
func (m *Manager) Resume(ctx context.Context, key string, spec target.Spec) error {
	t, err := m.Task(key)
	if err != nil {
		return err
	}
	if t.State != StatePaused || !pausable(t) {
		return errkind.New(errkind.Conflict, "task %s is %s, only paused imaging tasks resume", t.Key, t.State)
	}
	p, ok := m.board.Port(t.Port)
	if !ok {
		return errkind.New(errkind.NotFound, "port %s no longer exists", t.Port)
	}
	d := WaitDrive(ctx, p, 5*time.Second)
	if d == nil || d.Identity().Model != t.Model || d.Identity().Serial != t.Serial {
		return errkind.New(errkind.Conflict, "the drive %s %s is not on port %s", t.Model, t.Serial, t.Port)
	}
	if err := m.claim(t.Port, t.Key); err != nil {
		return err
	}
	// The folder is the task's; what else the request leaves out is the task's too (the password
	// never is: it is not stored).
	stored := t.Options.Target
	spec.Folder = stored.Folder
	if spec.Login == "" && spec.Domain == "" {
		spec.Login, spec.Domain = stored.Login, stored.Domain
	}
	if spec.MountOptions == "" {
		spec.MountOptions = stored.MountOptions
	}
	if spec.DNSLookup == "" {
		spec.DNSLookup = stored.DNSLookup
	}
	tgt, err := m.cfg.OpenTarget(ctx, spec)
	if err != nil {
		m.release(t.Port, t.Key)
		return errkind.New(errkind.BadRequest, "targetFolder: %v", err)
	}
	if verifyOnly(t) {
		t.State, t.Message = StateInProgress, ""
		m.logf(t, "imaging had completed before the interruption: verifying the image again")
		m.save(t)
		m.launch(t, func(ctx context.Context, t *store.Task, l *live) error { return m.reverify(ctx, t, l, tgt) })
		return nil
	}
	if t.Kind == KindImage {
		f, cp, err := m.reopenImage(t, d, tgt)
		if err != nil {
			tgt.Close()
			m.release(t.Port, t.Key)
			return err
		}
		t.State, t.Message = StateInProgress, ""
		endPause(t)
		m.logf(t, "resuming at byte %d", t.BytesDone)
		m.save(t)
		m.launch(t, func(ctx context.Context, t *store.Task, l *live) error { return m.runImage(ctx, t, l, d, tgt, f, cp) })
		return nil
	}
	run, err := m.resumeLogical(t, d, tgt)
	if err != nil {
		tgt.Close()
		m.release(t.Port, t.Key)
		return err
	}
	t.State, t.Message, t.Details = StateInProgress, "", ""
	endPause(t)
	m.logf(t, "resuming at byte %d", t.BytesDone)
	m.save(t)
	m.launch(t, run)
	return nil
}

// endPause closes a resumed task's open pause.
func endPause(t *store.Task) {
	if n := len(t.Pauses); n > 0 && t.Pauses[n-1].To.IsZero() {
		t.Pauses[n-1].To = time.Now()
	}
}

// WaitDrive powers a port on if needed and waits up to max for it to identify its drive; nil when
// nothing is detected in time, the port reports not-detected, or ctx ends. It waits on the port's
// state changes (hal.WaitIdentified), not on a timer.
func WaitDrive(ctx context.Context, p hal.Port, max time.Duration) hal.Drive {
	if !p.Powered() {
		if err := p.PowerOn(ctx); err != nil {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	d, err := hal.WaitIdentified(ctx, p)
	if err != nil {
		return nil
	}
	return d
}

// reopenImage proves, reading only, that the files on the target are the paused task's and that
// the drive is the one imaged so far, then reopens the image at its checkpoint (nil checkpoint:
// the image starts over). Any doubt is ErrConflict, and nothing is touched then.
func (m *Manager) reopenImage(t *store.Task, d hal.Drive, tgt target.Target) (output.Image, *pipeline.Checkpoint, error) {
	typ, base := t.Options.Format, t.TargetBase
	id := d.Identity()
	rd, err := d.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open source drive: %w", err)
	}
	defer rd.Close()
	spec := output.Spec{Options: t.Options, Base: base, AcquiredAt: t.AcquiredAt, Identity: id, Software: m.cfg.Software}
	if len(t.Checkpoint) == 0 {
		return m.restartImage(t, spec, rd, tgt)
	}
	ic := &imageCheckpoint{}
	if err := json.Unmarshal(t.Checkpoint, ic); err != nil {
		return nil, nil, fmt.Errorf("checkpoint of the paused task is unreadable: %w", err)
	}
	if ic.Source != nil {
		if err := proveSource(rd, id, ic.Source); err != nil {
			return nil, nil, errkind.New(errkind.Conflict, "not resuming %s: %v", t.Key, err)
		}
	}
	if ic.File != nil {
		if err := proveFile(tgt, typ, base, ic.File); err != nil {
			return nil, nil, errkind.New(errkind.Conflict, "not resuming %s, its image is not what it wrote: %v; nothing was changed", t.Key, err)
		}
	}
	if typ == options.Raw {
		if err := proveRawContent(tgt, base+".raw", rd, id); err != nil {
			return nil, nil, errkind.New(errkind.Conflict, "not resuming %s: %v; nothing was changed", t.Key, err)
		}
	}
	cp := &ic.Checkpoint
	// AFF4 proves its container (volume URN, members) as it reopens it, before writing anything.
	f, err := output.OpenImage(spec, tgt, cp)
	if errkind.Of(err) == errkind.Conflict {
		return nil, nil, errkind.New(errkind.Conflict, "not resuming %s: %v", t.Key, err)
	}
	if err != nil {
		return nil, nil, err
	}
	if cp.Offset == 0 && len(cp.HashStates) == 0 {
		cp = nil // the first checkpoint, taken before any byte: the hashes start fresh
	}
	return f, cp, nil
}

// restartImage starts a paused task without a checkpoint from byte 0: its partial files are
// removed, which needs them to be provably this task's (absent, empty, or for raw the same data as
// the drive).
func (m *Manager) restartImage(t *store.Task, spec output.Spec, rd hal.Reader, tgt target.Target) (output.Image, *pipeline.Checkpoint, error) {
	var names []string
	switch spec.Options.Format {
	case options.E01:
		for n := 1; ; n++ {
			if _, err := tgt.Stat(ewf.SegmentName(spec.Base, n)); err != nil {
				break
			}
			names = append(names, ewf.SegmentName(spec.Base, n))
		}
	default:
		names = []string{spec.Base + "." + spec.Options.Format.Extension()}
	}
	for _, name := range names {
		size, err := tgt.Stat(name)
		if err != nil || size == 0 {
			continue
		}
		if spec.Options.Format == options.Raw {
			if err := proveRawContent(tgt, name, rd, spec.Identity); err == nil {
				continue
			}
		}
		return nil, nil, errkind.New(errkind.Conflict, "not resuming %s: it paused before its first checkpoint, and %s (%d bytes) cannot be proven to be its partial image; move it away and resume again to start over",
			t.Key, tgt.Display(name), size)
	}
	for _, name := range names {
		if _, err := tgt.Stat(name); err != nil {
			continue
		}
		if err := tgt.Remove(name); err != nil {
			return nil, nil, fmt.Errorf("remove partial image %s: %w", tgt.Display(name), err)
		}
		m.logf(t, "no checkpoint yet: removed the partial image %s", tgt.Display(name))
	}
	m.logf(t, "no checkpoint yet: imaging restarts from byte 0")
	t.BytesDone = 0
	f, err := output.OpenImage(spec, tgt, nil)
	if err != nil {
		return nil, nil, err
	}
	return f, nil, nil
}

// runImage acquires the drive into the opened image f, from the checkpoint cp (nil: from byte 0).
func (m *Manager) runImage(ctx context.Context, t *store.Task, l *live, d hal.Drive, tgt target.Target, f output.Image, cp *pipeline.Checkpoint) error {
	l.tgt = tgt // closed after the report is written
	hashes := t.Options.Hashes
	id := d.Identity()
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
	}()
	raw, err := d.Open()
	if err != nil {
		return fmt.Errorf("open source drive: %w", err)
	}
	var rd hal.Reader = raw
	if p, ok := m.board.Port(t.Port); ok {
		// A drive that freezes is reset, power-cycled and read again; every step is logged.
		fc := m.cfg.Freeze
		fc.Log = func(format string, args ...any) {
			l.mu.Lock()
			m.logf(t, format, args...)
			t.Recovery = append(t.Recovery, t.Log[len(t.Log)-1])
			l.mu.Unlock()
		}
		rd = recovery.New(p, d, raw, fc)
	}
	defer rd.Close()

	t.Step = "imaging"
	m.save(t)
	src := source.New(rd, id.Size, source.Config{
		BlockSize: 1 << 20, Depth: 4, SectorSize: id.SectorSize,
		Retries: t.Options.Retries,
		Fatal:   func(err error) bool { return errors.Is(err, hal.ErrGone) },
	})
	// Only formats that can reopen their files at a checkpoint are paused; others stop.
	_, resumable := f.Writer().(pipeline.Checkpointer)
	res, err := pipeline.Run(ctx, src, f.Writer(), pipeline.Config{
		Hashes: hashes, Resume: cp, Background: m.cfg.Background,
		Progress: l.set,
		OnCheckpoint: func(c pipeline.Checkpoint) {
			if !resumable {
				return
			}
			data, err := imageCheckpointJSON(t, tgt, id, rd, c)
			if err != nil {
				m.log.Warn("checkpoint not kept", "task", t.Key, "err", err)
				return
			}
			// Store a copy of the record: this runs on the pipeline's goroutine.
			l.mu.Lock()
			tc := *t
			l.mu.Unlock()
			tc.Checkpoint, tc.BytesDone = data, c.Offset
			m.save(&tc)
		},
		CheckpointEvery: m.cfg.CheckpointEvery,
	})
	// The last progress report can lag the end by up to a second; finish records the live count.
	l.set(res.Bytes)
	l.mu.Lock()
	t.BadSectors = t.BadSectors[:0]
	for _, r := range res.BadRanges {
		t.BadSectors = append(t.BadSectors, store.SectorRange{First: r.First, Count: r.Count})
	}
	t.BytesDone = res.Bytes
	l.mu.Unlock()
	if err != nil {
		if res.Last != nil && resumable {
			data, merr := imageCheckpointJSON(t, tgt, id, rd, *res.Last)
			if merr == nil {
				t.Checkpoint, t.BytesDone = data, res.Last.Offset
			}
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		// What was written stays on the target (it may be all there is of a failing drive); the
		// log and the report say it is incomplete. Writes to a share are still in flight when
		// the pipeline stops, so the count is an upper bound; the files' sizes, once closed, are
		// what is really there.
		closed = true
		f.Close()
		var kept int64
		for _, name := range f.Files() {
			if n, serr := tgt.Stat(name); serr == nil {
				kept += n
			}
		}
		m.logf(t, "image incomplete: at most %d of %d source bytes written; %d bytes of image files kept at %s", res.Bytes, id.Size, kept, t.Target)
		if errors.Is(err, hal.ErrGone) {
			return fmt.Errorf("the source drive is gone from %s (unplugged or powered off) after %d bytes; the partial image is kept: %w", t.Port, res.Bytes, err)
		}
		return fmt.Errorf("imaging failed at byte %d: %w", res.Bytes, err)
	}
	closed = true
	if err := output.Finish(f, res, id.SectorSize); err != nil {
		return err
	}
	t.Hashes = res.Hashes
	t.Checkpoint = nil
	if n := badCount(t.BadSectors); n > 0 {
		m.logf(t, "%d unreadable sectors zero-filled", n)
		t.Details = fmt.Sprintf("%d unreadable sectors zero-filled", n)
	}
	for name, sum := range res.Hashes {
		m.logf(t, "acquisition %s %s", name, sum)
	}
	m.save(t)

	if t.Options.Verify {
		l.nextStep(id.Size)
		t.Step = "verifying"
		m.save(t)
		if err := m.verify(ctx, t, l, f.ReadBack, hashes, res.Hashes); err != nil {
			return err
		}
	}
	t.Step = "post-hash"
	m.ownHashes(ctx, t, tgt)
	return nil
}

// verifyOnly reports whether a paused image task had written its whole image and was verifying
// it: resuming it verifies again and writes nothing.
func verifyOnly(t *store.Task) bool {
	return t.Kind == KindImage && t.Step == "verifying" && len(t.Hashes) > 0
}

// reverify is the run of a resumed task that was interrupted while verifying.
func (m *Manager) reverify(ctx context.Context, t *store.Task, l *live, tgt target.Target) error {
	l.tgt = tgt
	l.nextStep(t.BytesTotal) // the imaging is done: the verification is what is left
	t.Details, t.Verified = "", false
	if n := badCount(t.BadSectors); n > 0 {
		t.Details = fmt.Sprintf("%d unreadable sectors zero-filled", n)
	}
	names := make([]digest.Name, 0, len(t.Hashes))
	for name := range t.Hashes {
		n, err := digest.Parse(name)
		if err != nil {
			return fmt.Errorf("verify: the task's acquisition hash %w", err)
		}
		names = append(names, n)
	}
	rb := func() (io.Reader, func() error, error) {
		return output.ReadBack(t.Options.Format, t.TargetBase, tgt)
	}
	if err := m.verify(ctx, t, l, rb, names, t.Hashes); err != nil {
		return err
	}
	t.Step = "post-hash"
	m.ownHashes(ctx, t, tgt)
	return nil
}

// verify re-reads the written image through our reader and compares its hashes.
func (m *Manager) verify(ctx context.Context, t *store.Task, l *live, readBack func() (io.Reader, func() error, error), names []digest.Name, want map[string]string) error {
	t.VerifyStarted, t.VerifyHashes = time.Now(), nil
	r, closeFn, err := readBack()
	if err != nil {
		return fmt.Errorf("verify: open image: %w", err)
	}
	defer closeFn()
	var got map[string]string
	m.cfg.Background.Do(func() { got, err = pipeline.HashStream(ctx, r, names, l.set) })
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	t.VerifyHashes = got
	var bad []string
	for name, sum := range got {
		if sum != want[name] {
			bad = append(bad, fmt.Sprintf("%s %s != %s", name, sum, want[name]))
		} else {
			m.logf(t, "verification %s %s matches", name, sum)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("verification FAILED: image hashes differ from acquisition: %s", strings.Join(bad, "; "))
	}
	t.Verified = true
	t.Details = joinDetails(t.Details, "verified")
	return nil
}
