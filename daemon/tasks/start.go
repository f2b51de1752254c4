package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
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
	run        func(ctx context.Context, t *store.Task, l *live, tgt target.Target) error
}

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
		return "", fmt.Errorf("targetFolder: %v: %w", err, ErrBadRequest)
	}
	key, n, err := m.NewKey(s.kind, id)
	if err != nil {
		tgt.Close()
		return "", err
	}
	defer func() {
		if !ok {
			m.returnKey(s.kind, id, n)
		}
	}()
	base := s.opts.TargetFile
	if base == "" {
		base = fmt.Sprintf("%s%s_%d", id.Model, id.Serial, n)
	}
	ext := s.opts.Format.Extension()
	name := base + "." + ext
	if _, err := tgt.Stat(name); err == nil {
		tgt.Close()
		return "", fmt.Errorf("%s already exists; images are never overwritten: %w", tgt.Display(name), ErrConflict)
	}
	now := time.Now()
	t := &store.Task{
		Key: key, Kind: s.kind, N: n, Port: port, Model: id.Model, Serial: id.Serial, Size: id.Size,
		State: StateInProgress, Step: "preparing", Created: now, Started: now,
		Target: tgt.Display(name), Options: s.opts, TargetBase: base, AcquiredAt: now,
		CaseID: s.caseID, EvidenceID: s.evidenceID,
	}
	if s.kind == KindImage {
		t.BytesTotal = id.Size
	}
	if s.opts.SaveReport {
		t.ReportDir = base + "_" + strings.ToUpper(ext) + "_report"
		t.Report = tgt.Display(t.ReportDir + "/Report.html")
	}
	m.logf(t, "%s %s %s %s (%d bytes) to %s as %s", s.verb, port, id.Model, id.Serial, id.Size, t.Target, strings.ToUpper(string(s.opts.Format)))
	if err := m.st.PutTask(t); err != nil {
		tgt.Close()
		return "", fmt.Errorf("store task: %w", err)
	}
	m.mu.Lock()
	m.busy[port] = key
	m.mu.Unlock()
	ok = true
	m.launch(t, func(ctx context.Context, t *store.Task, l *live) error { return s.run(ctx, t, l, tgt) })
	return key, nil
}
