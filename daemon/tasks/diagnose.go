package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/diagnose"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/errkind"
	"github.com/evidenced/evidenced/store"
)

// DiagnoseRequest is a validated diagnose request.
type DiagnoseRequest struct {
	Port   hal.Port
	Drive  hal.Drive
	Report *target.Spec // reportFolder, if given (with its password, never stored)
	// Options holds the report folder without its password.
	Options options.Task
}

// StartDiagnose creates and starts a diagnose task.
func (m *Manager) StartDiagnose(ctx context.Context, req DiagnoseRequest) (string, error) {
	port := req.Port.Name()
	placeholder := startingPrefix + port
	if err := m.claim(port, placeholder); err != nil {
		return "", err
	}
	id := req.Drive.Identity()
	var tgt target.Target
	if req.Report != nil {
		var err error
		if tgt, err = m.cfg.OpenTarget(ctx, *req.Report); err != nil {
			m.release(port, placeholder)
			return "", errkind.New(errkind.BadRequest, "reportFolder: %v", err)
		}
	}
	// The report folder is reserved (created exclusively) with the key: numbering restarts when
	// the state file is reset, and an older report is never overwritten, so a taken number moves on.
	var (
		key, reportDir string
		n              int
	)
	for try := 0; ; try++ {
		var err error
		if key, n, err = m.NewKey(KindDiagnose, id); err != nil {
			m.release(port, placeholder)
			if tgt != nil {
				tgt.Close()
			}
			return "", err
		}
		if tgt == nil {
			break
		}
		reportDir = fmt.Sprintf("%s%s_diagnose_%d", id.Model, id.Serial, n)
		err = tgt.Mkdir(reportDir)
		if err == nil {
			break
		}
		if !errors.Is(err, target.ErrExist) || try >= maxNameTries {
			m.release(port, placeholder)
			tgt.Close()
			return "", fmt.Errorf("reportFolder: %w", err)
		}
	}
	t := &store.Task{Key: key, Kind: KindDiagnose, N: n, Port: port, Model: id.Model, Serial: id.Serial, Size: id.Size,
		State: StateInProgress, Step: "identify", Created: time.Now(), Started: time.Now(), BytesTotal: id.Size, Options: req.Options}
	o := ownerOf(ctx)
	t.Owner, t.Shared = o.name, o.shared
	recordDrive(t, req.Port, id)
	if tgt != nil {
		t.ReportDir = reportDir
		t.Report = tgt.Display(t.ReportDir + "/Report.html")
	}
	m.logf(t, "diagnostics of %s %s %s", port, id.Model, id.Serial)
	if err := m.st.PutTask(t); err != nil {
		m.release(port, placeholder)
		return "", err
	}
	m.mu.Lock()
	m.busy[port] = key
	m.mu.Unlock()
	m.launch(t, func(ctx context.Context, t *store.Task, l *live) error {
		l.tgt = tgt
		return m.runDiagnose(ctx, t, l, req.Drive)
	})
	return key, nil
}

func (m *Manager) runDiagnose(ctx context.Context, t *store.Task, l *live, d hal.Drive) error {
	id := d.Identity()
	m.logf(t, "identified: %s %s firmware %q, %d bytes, %d-byte sectors, %s", id.Model, id.Serial, id.Firmware, id.Size, id.SectorSize, id.Bus)
	t.Step = "smart"
	m.save(t)
	h, herr := d.Health(ctx)
	if herr != nil {
		m.logf(t, "SMART not available: %v", herr)
	} else if h.Supported {
		m.logf(t, "SMART: passed=%v temperature=%d°C power-on=%dh reallocated=%d pending=%d", h.Passed, h.TemperatureC, h.PowerOnHours, h.Reallocated, h.PendingSectors)
	}
	t.Step = "surface"
	m.save(t)
	rd, err := d.Open()
	if err != nil {
		// The report still has the SMART part.
		t.ReportExtra, _ = report.Extra{Diagnose: diagnoseReport(h, herr, diagnose.Surface{}, id.SectorSize)}.Marshal()
		return fmt.Errorf("open drive: %w", err)
	}
	defer rd.Close()
	s, serr := diagnose.Scan(ctx, rd, id.Size, id.SectorSize, func(err error) bool { return errors.Is(err, hal.ErrGone) }, l.set)
	t.BadSectors = t.BadSectors[:0]
	var bad int64
	for _, r := range s.Unreadable {
		t.BadSectors = append(t.BadSectors, store.SectorRange{First: r.First, Count: r.Count})
		bad += r.Count
	}
	t.BytesDone = s.Bytes
	m.logf(t, "surface: %d bytes in %.1f s (%.1f MB/s), %d unreadable sectors", s.Bytes, s.Seconds, s.MBps, bad)
	t.Step = "report"
	if t.ReportExtra, err = (report.Extra{Diagnose: diagnoseReport(h, herr, s, id.SectorSize)}).Marshal(); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	switch {
	case bad > 0:
		t.Details = fmt.Sprintf("%d unreadable sectors", bad)
	case h.Supported && !h.Passed:
		t.Details = "SMART overall health FAILED"
	default:
		t.Details = "no problems found"
	}
	return nil
}

// diagnoseReport is the diagnose's part of the report: SMART with each attribute's verdict, and
// the surface test with its map.
func diagnoseReport(h hal.Health, herr error, s diagnose.Surface, sectorSize int) *report.Diagnose {
	d := &report.Diagnose{SMART: report.Health{Supported: h.Supported, Passed: h.Passed, TemperatureC: h.TemperatureC,
		PowerOnHours: h.PowerOnHours, Reallocated: h.Reallocated, PendingSectors: h.PendingSectors}}
	if herr != nil {
		d.SMART.Error = herr.Error()
	}
	for _, a := range h.SMART {
		d.SMART.Attributes = append(d.SMART.Attributes, report.Attribute{ID: a.ID, Name: a.Name, Value: a.Value, Worst: a.Worst,
			Threshold: a.Threshold, Raw: a.Raw, PreFail: a.PreFail, Verdict: report.AttributeVerdict(a.Value, a.Worst, a.Threshold)})
	}
	if len(h.SMART) == 0 { // NVMe: a health log without thresholds
		for _, k := range slices.Sorted(maps.Keys(h.Attributes)) {
			d.SMART.Other = append(d.SMART.Other, report.Setting{Name: k, Value: h.Attributes[k]})
		}
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	sf := report.Surface{Bytes: s.Bytes, Seconds: s.Seconds, MBps: s.MBps, BlockSize: s.BlockSize, SlowestMs: ms(s.Slowest),
		Unreadable: []report.Range{}, Map: make([]report.Region, 0, len(s.Map))}
	for i, name := range diagnose.ClassNames() {
		if i < len(s.Histogram) {
			sf.Histogram = append(sf.Histogram, report.Bucket{Label: name, Reads: s.Histogram[i]})
		}
	}
	ss := int64(max(sectorSize, 512))
	for _, u := range s.Unreadable {
		sf.Unreadable = append(sf.Unreadable, report.Range{First: u.First, Count: u.Count, Bytes: u.Count * ss})
		sf.UnreadableSectors += u.Count
	}
	for _, g := range s.Map {
		sf.Map = append(sf.Map, report.Region{Offset: g.Offset, Bytes: g.Bytes, MeanMs: ms(g.Mean), MaxMs: ms(g.Max), Unreadable: g.Unreadable})
	}
	d.Surface = sf
	return d
}
