package tasks

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
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

// StartImage validates the target, creates the task and starts it.
func (m *Manager) StartImage(ctx context.Context, req ImageRequest) (string, error) {
	return m.start(ctx, startSpec{
		kind: KindImage, verb: "imaging", port: req.Port, drive: req.Drive, spec: req.Spec, opts: req.Options,
		caseID: req.CaseID, evidenceID: req.EvidenceID,
		run: func(ctx context.Context, t *store.Task, l *live, tgt target.Target) error {
			return m.runImage(ctx, t, l, req.Drive, tgt, false)
		},
	})
}

// Resume continues a paused imaging task from its last checkpoint. spec carries the credentials,
// which are never stored.
func (m *Manager) Resume(ctx context.Context, key string, spec target.Spec) error {
	t, err := m.Task(key)
	if err != nil {
		return err
	}
	if t.State != StatePaused || !pausable(t) {
		return fmt.Errorf("task %s is %s, only paused imaging tasks resume: %w", t.Key, t.State, ErrConflict)
	}
	p, ok := m.board.Port(t.Port)
	if !ok {
		return fmt.Errorf("port %s no longer exists: %w", t.Port, ErrNotFound)
	}
	d := WaitDrive(ctx, p, 5*time.Second)
	if d == nil || d.Identity().Model != t.Model || d.Identity().Serial != t.Serial {
		return fmt.Errorf("the drive %s %s is not on port %s: %w", t.Model, t.Serial, t.Port, ErrConflict)
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
		return fmt.Errorf("targetFolder: %v: %w", err, ErrBadRequest)
	}
	run := func(ctx context.Context, t *store.Task, l *live) error { return m.runImage(ctx, t, l, d, tgt, true) }
	if t.Kind == KindLogical {
		if run, err = m.resumeLogical(t, d, tgt); err != nil {
			tgt.Close()
			m.release(t.Port, t.Key)
			return err
		}
	}
	t.State, t.Message, t.Details = StateInProgress, "", ""
	m.logf(t, "resuming at byte %d", t.BytesDone)
	m.save(t)
	m.launch(t, run)
	return nil
}

// WaitDrive powers a port on if needed and waits up to max for it to identify its drive; nil when
// nothing is detected in time.
func WaitDrive(ctx context.Context, p hal.Port, max time.Duration) hal.Drive {
	if !p.Powered() {
		if err := p.PowerOn(ctx); err != nil {
			return nil
		}
	}
	deadline := time.Now().Add(max)
	for {
		switch p.State() {
		case hal.StateReady:
			return p.Drive()
		case hal.StateNotDetected:
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Image is an opened output format.
type Image struct {
	Writer   pipeline.ChunkWriter
	AddBad   func(r source.Range, sectorSize int)
	SetHash  func(name string, sum []byte)
	Close    func() error
	Files    func() []string
	ReadBack func() (io.Reader, func() error, error) // the image's data stream, for verification
}

func (m *Manager) runImage(ctx context.Context, t *store.Task, l *live, d hal.Drive, tgt target.Target, resume bool) error {
	l.tgt = tgt // closed after the report is written
	hashes := t.Options.Hashes
	id := d.Identity()

	rd, err := d.Open()
	if err != nil {
		return fmt.Errorf("open source drive: %w", err)
	}
	defer rd.Close()

	var cp *pipeline.Checkpoint
	if resume {
		cp = &pipeline.Checkpoint{}
		if err := json.Unmarshal(t.Checkpoint, cp); err != nil {
			return fmt.Errorf("checkpoint of the paused task is unreadable: %w", err)
		}
	}
	f, err := OpenImage(ImageSpec{Options: t.Options, Base: t.TargetBase, AcquiredAt: t.AcquiredAt, Identity: id, Software: m.cfg.Software}, tgt, cp)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			f.Close()
		}
	}()

	t.Step = "imaging"
	m.save(t)
	src := source.New(rd, id.Size, source.Config{
		BlockSize: 1 << 20, Depth: 4, SectorSize: id.SectorSize,
		Retries: t.Options.Retries,
		Fatal:   func(err error) bool { return errors.Is(err, hal.ErrGone) },
	})
	// Only formats that can reopen their files at a checkpoint are paused; others stop.
	_, resumable := f.Writer.(pipeline.Checkpointer)
	res, err := pipeline.Run(ctx, src, f.Writer, pipeline.Config{
		Hashes: hashes, Resume: cp,
		Progress: l.set,
		OnCheckpoint: func(c pipeline.Checkpoint) {
			if !resumable {
				return
			}
			data, err := json.Marshal(c)
			if err != nil {
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
			data, merr := json.Marshal(res.Last)
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
	for _, r := range res.BadRanges {
		f.AddBad(r, id.SectorSize)
	}
	for name, sum := range res.Hashes {
		b, _ := hex.DecodeString(sum)
		f.SetHash(name, b)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("finish image: %w", err)
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
		if err := m.verify(ctx, t, l, f, hashes, res.Hashes); err != nil {
			return err
		}
	}
	t.Step = "post-hash"
	return nil
}

// verify re-reads the written image through our reader and compares its hashes.
func (m *Manager) verify(ctx context.Context, t *store.Task, l *live, f *Image, names []string, want map[string]string) error {
	r, closeFn, err := f.ReadBack()
	if err != nil {
		return fmt.Errorf("verify: open image: %w", err)
	}
	defer closeFn()
	got, err := pipeline.HashStream(ctx, r, names, l.set)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
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
