package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"time"

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

var diagTmpl = template.Must(template.New("diag").Parse(`
<h2>Identification</h2><table>
<tr><th>Model</th><td>{{.ID.Model}}</td></tr><tr><th>Serial</th><td>{{.ID.Serial}}</td></tr>
<tr><th>Firmware</th><td>{{.ID.Firmware}}</td></tr><tr><th>Bus</th><td>{{.ID.Bus}}</td></tr>
<tr><th>Size</th><td>{{.ID.Size}} bytes</td></tr><tr><th>Sector size</th><td>{{.ID.SectorSize}}</td></tr></table>
<h2>SMART</h2>{{if .H.Supported}}<table>
<tr><th>Overall</th><td>{{if .H.Passed}}PASSED{{else}}<b class="bad">FAILED</b>{{end}}</td></tr>
<tr><th>Temperature</th><td>{{.H.TemperatureC}} °C</td></tr><tr><th>Power-on hours</th><td>{{.H.PowerOnHours}}</td></tr>
<tr><th>Reallocated sectors</th><td>{{.H.Reallocated}}</td></tr><tr><th>Pending sectors</th><td>{{.H.PendingSectors}}</td></tr>
{{range $k, $v := .H.Attributes}}<tr><th>{{$k}}</th><td>{{$v}}</td></tr>{{end}}</table>{{else}}<p>Not offered by this bus.</p>{{end}}
<h2>Surface read test</h2><table>
<tr><th>Bytes read</th><td>{{.S.Bytes}}</td></tr><tr><th>Time</th><td>{{printf "%.1f" .S.Seconds}} s</td></tr>
<tr><th>Average speed</th><td>{{printf "%.1f" .S.MBps}} MB/s</td></tr><tr><th>Slowest 1 MiB read</th><td>{{.S.Slowest}}</td></tr>
{{range $i, $n := .Names}}<tr><th>reads {{$n}}</th><td>{{index $.S.Histogram $i}}</td></tr>{{end}}
<tr><th>Unreadable sectors</th><td>{{.Bad}}</td></tr></table>
`))

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
	h, err := d.Health(ctx)
	if err != nil {
		m.logf(t, "SMART not available: %v", err)
	} else if h.Supported {
		m.logf(t, "SMART: passed=%v temperature=%d°C power-on=%dh reallocated=%d pending=%d", h.Passed, h.TemperatureC, h.PowerOnHours, h.Reallocated, h.PendingSectors)
	}
	t.Step = "surface"
	m.save(t)
	rd, err := d.Open()
	if err != nil {
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
	var buf bytes.Buffer
	if err := diagTmpl.Execute(&buf, map[string]any{"ID": id, "H": h, "S": s, "Names": diagnose.ClassNames(), "Bad": bad}); err != nil {
		return fmt.Errorf("render diagnostics: %w", err)
	}
	t.ReportExtra = buf.String()
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
