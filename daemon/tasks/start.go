package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// startSpec is what starting a task that writes a file into a target folder needs.
type startSpec struct {
	kind, verb string // task kind; verb for the log ("imaging")
	port       hal.Port
	drive      hal.Drive
	spec       target.Spec
	opts       options.Task
	caseID     string
	evidenceID string
	// prepare, when set, runs once the names are reserved and before the task is stored (it may
	// open the output and give the task its first checkpoint); its error cancels the start.
	prepare func(t *store.Task, tgt target.Target) error
	run     func(ctx context.Context, t *store.Task, l *live, tgt target.Target) error
}

// maxNameTries bounds the search for a free automatic name (<model><serial>_<n>).
const maxNameTries = 100

// start claims the port, opens the target folder, refuses to overwrite an existing output, stores
// the task record and launches run.
func (m *Manager) start(ctx context.Context, s startSpec) (string, error) {
	port := s.port.Name()
	// Claim first so two requests for one drive cannot both start.
	placeholder := startingPrefix + port
	if err := m.claim(port, placeholder); err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			m.release(port, placeholder)
		}
	}()
	id := s.drive.Identity()
	tgt, err := m.cfg.OpenTarget(ctx, s.spec)
	if err != nil {
		return "", errkind.New(errkind.BadRequest, "targetFolder: %v", err)
	}
	// The image name and the report folder are reserved (created exclusively) before the key is
	// answered: of two requests for one name, exactly one gets it. An automatic name moves on to
	// the next number when it is taken (a state file reset restarts the counter).
	var (
		key, base, name, reportDir string
		n                          int
		rtgt                       *reservedTarget
	)
	for try := 0; ; try++ {
		var err error
		if key, n, err = m.NewKey(s.kind, id); err != nil {
			tgt.Close()
			return "", err
		}
		base = s.opts.TargetFile
		if base == "" {
			base = fmt.Sprintf("%s%s_%d", id.Model, id.Serial, n)
		}
		ext := s.opts.Format.Extension()
		name, reportDir = base+"."+ext, ""
		if s.opts.SaveReport {
			reportDir = base + "_" + strings.ToUpper(ext) + "_report"
		}
		rtgt, err = reserve(tgt, name, reportDir)
		if err == nil {
			break
		}
		if errors.Is(err, target.ErrExist) && s.opts.TargetFile == "" && try < maxNameTries {
			continue
		}
		m.returnKey(s.kind, id, n) // refused: the number stays free
		tgt.Close()
		if errors.Is(err, target.ErrExist) {
			return "", errkind.New(errkind.Conflict, "%v; images and reports are never overwritten", err)
		}
		return "", fmt.Errorf("reserve %s: %w", tgt.Display(name), err)
	}
	now := time.Now()
	t := &store.Task{
		Key: key, Kind: s.kind, N: n, Port: port, Model: id.Model, Serial: id.Serial, Size: id.Size,
		State: StateInProgress, Step: "preparing", Created: now, Started: now,
		Target: tgt.Display(name), Options: s.opts, TargetBase: base, AcquiredAt: now,
		CaseID: s.caseID, EvidenceID: s.evidenceID,
	}
	o := ownerOf(ctx)
	t.Owner, t.Shared = o.name, o.shared
	recordDrive(t, s.port, id)
	if s.kind == KindImage {
		t.BytesTotal = id.Size
	}
	if reportDir != "" {
		t.ReportDir = reportDir
		t.Report = tgt.Display(t.ReportDir + "/Report.html")
	}
	if s.prepare != nil {
		if err := s.prepare(t, rtgt); err != nil {
			rtgt.unreserve()
			rtgt.Close()
			m.returnKey(s.kind, id, n)
			return "", err
		}
	}
	m.logf(t, "%s %s %s %s (%d bytes) to %s as %s", s.verb, port, id.Model, id.Serial, id.Size, t.Target, strings.ToUpper(string(s.opts.Format)))
	if err := m.st.PutTask(t); err != nil {
		rtgt.Close()
		m.returnKey(s.kind, id, n)
		return "", fmt.Errorf("store task: %w", err)
	}
	m.mu.Lock()
	m.busy[port] = key
	m.mu.Unlock()
	ok = true
	m.launch(t, func(ctx context.Context, t *store.Task, l *live) error { return s.run(ctx, t, l, rtgt) })
	return key, nil
}

// reservedTarget is a target on which the output's first file and the report folder were
// created exclusively by start; the format's Create of that name gets the reserved file.
type reservedTarget struct {
	target.Target
	name, reportDir string
	f               target.File // until the format takes it
}

// reserve creates name (empty) and reportDir ("" = none) exclusively in tgt.
func reserve(tgt target.Target, name, reportDir string) (*reservedTarget, error) {
	f, err := tgt.Create(name)
	if err != nil {
		return nil, err
	}
	if reportDir != "" {
		if err := tgt.Mkdir(reportDir); err != nil {
			f.Close()
			_ = tgt.Remove(name) // ours: created just now and still empty
			return nil, err
		}
	}
	return &reservedTarget{Target: tgt, name: name, reportDir: reportDir, f: f}, nil
}

func (r *reservedTarget) Create(name string) (target.File, error) {
	if r.f != nil && name == r.name {
		f := r.f
		r.f = nil
		return f, nil
	}
	return r.Target.Create(name)
}

// unreserve removes what reserve created, for a start that failed before its task existed.
func (r *reservedTarget) unreserve() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	_ = r.Target.Remove(r.name)
	if r.reportDir != "" {
		_ = r.Target.Remove(r.reportDir)
	}
}

func (r *reservedTarget) Close() error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	return r.Target.Close()
}
