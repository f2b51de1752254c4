package tasks

import (
	"archive/zip"
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/store"
)

// reportFuncs format times for the reports: "when" in the appliance's local time, "whenUTC" for
// evidence file times.
var reportFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05 MST")
	},
	"whenUTC": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}

var reportTmpl = template.Must(template.New("report").Funcs(reportFuncs).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px;text-align:left}th{background:#eee}.bad{color:#a00}</style>
</head><body>
<h1>{{.Title}}</h1>
<table>
<tr><th>Task</th><td>{{.T.Key}}</td></tr>
<tr><th>State</th><td>{{.T.State}}</td></tr>
<tr><th>Message</th><td>{{.T.Message}}</td></tr>
{{if .Incomplete}}<tr class="bad"><th>Image</th><td>{{.Incomplete}}</td></tr>{{end}}
<tr><th>Appliance</th><td>{{.Appliance}} ({{.Software}})</td></tr>
<tr><th>Source</th><td>{{.T.Port}} {{.T.Model}} {{.T.Serial}}</td></tr>
<tr><th>Source size</th><td>{{.T.Size}} bytes</td></tr>
{{if .T.Target}}<tr><th>Target</th><td>{{.T.Target}}</td></tr>{{end}}
{{if .T.CaseID}}<tr><th>Case</th><td>{{.T.CaseID}}</td></tr>{{end}}
{{if .T.EvidenceID}}<tr><th>Evidence</th><td>{{.T.EvidenceID}}</td></tr>{{end}}
<tr><th>Started</th><td>{{when .T.Started}}</td></tr>
<tr><th>Completed</th><td>{{when .T.Completed}}</td></tr>
<tr><th>Bytes processed</th><td>{{.T.BytesDone}}</td></tr>
</table>
{{if .Hashes}}<h2>Hashes</h2><table>{{range .Hashes}}<tr><th>{{.Name}}</th><td><code>{{.Sum}}</code></td></tr>{{end}}</table>{{end}}
{{if .Params}}<h2>Settings</h2><table>{{range .Params}}<tr><th>{{.Name}}</th><td>{{.Sum}}</td></tr>{{end}}</table>{{end}}
<h2>Unreadable sectors</h2>
{{if .T.BadSectors}}<table><tr><th>First LBA</th><th>Count</th></tr>{{range .T.BadSectors}}<tr class="bad"><td>{{.First}}</td><td>{{.Count}}</td></tr>{{end}}</table>
{{else}}<p>None.</p>{{end}}
{{.Extra}}
<h2>Audit trail</h2>
{{if .Audit}}<pre>{{range .Audit}}{{.}}
{{end}}</pre>{{else}}<p>No audited actions.</p>{{end}}
<h2>Log</h2><pre>{{range .T.Log}}{{.}}
{{end}}</pre>
</body></html>
`))

type pair struct{ Name, Sum string }

// ReportFiles builds the report of a task: Report.html, Log.txt and Hashes.txt.
func (m *Manager) ReportFiles(t *store.Task) map[string][]byte {
	title := map[string]string{KindImage: "Imaging report", KindLogical: "Logical imaging report", KindDiagnose: "Diagnostics report"}[t.Kind]
	var hashes, params []pair
	for k, v := range t.Hashes {
		hashes = append(hashes, pair{k, v})
	}
	sort.Slice(hashes, func(i, j int) bool { return hashes[i].Name < hashes[j].Name })
	for k, v := range t.Params {
		if k == "targetBase" {
			continue
		}
		params = append(params, pair{k, v})
	}
	sort.Slice(params, func(i, j int) bool { return params[i].Name < params[j].Name })
	audit := m.auditLines(t.Key)
	var html bytes.Buffer
	err := reportTmpl.Execute(&html, map[string]any{
		"Title": title, "T": t, "Appliance": m.cfg.ApplianceID, "Software": m.cfg.Software,
		"Hashes": hashes, "Params": params, "Extra": template.HTML(t.ReportExtra), "Incomplete": incomplete(t),
		"Audit": audit,
	})
	if err != nil {
		m.log.Error("render report", "task", t.Key, "err", err)
	}
	var hl strings.Builder
	for _, h := range hashes {
		fmt.Fprintf(&hl, "%s  %s  %s\n", h.Name, h.Sum, t.Target)
	}
	return map[string][]byte{
		"Report.html": html.Bytes(),
		"Log.txt":     []byte(strings.Join(t.Log, "\n") + "\n"),
		"Hashes.txt":  []byte(hl.String()),
		"Audit.txt":   []byte(strings.Join(audit, "\n") + "\n"),
	}
}

// auditLines are the task's audit records (who started, stopped, resumed it, from where), one
// line each: time, user, address, action, parameters, result.
func (m *Manager) auditLines(key string) []string {
	recs, err := m.st.AuditForTask(key)
	if err != nil {
		m.log.Error("audit records of a report", "task", key, "err", err)
		return []string{"(the audit trail could not be read: " + err.Error() + ")"}
	}
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var p strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&p, " %s=%q", k, r.Params[k])
		}
		user := r.User
		if user == "" {
			user = "-"
		}
		out = append(out, fmt.Sprintf("#%d %s %s %s %s%s -> %s", r.Seq, r.Time.UTC().Format(time.RFC3339), user, r.Addr, r.Action, p.String(), r.Result))
	}
	return out
}

// incomplete says, for an imaging task that ended without its whole image, how much was written;
// "" otherwise. A partial image is never deleted, so the report must not let it pass for whole.
func incomplete(t *store.Task) string {
	if t.Target == "" {
		return ""
	}
	switch t.State {
	case StateFailed, StateStopped, StatePaused:
	default:
		return ""
	}
	switch t.Kind {
	case KindImage:
		return fmt.Sprintf("image incomplete: at most %d of %d source bytes written", t.BytesDone, t.BytesTotal)
	case KindLogical:
		return fmt.Sprintf("logical image incomplete: %d of %d bytes of the selected files copied", t.BytesDone, t.BytesTotal)
	}
	return ""
}

// ReportZip is the report archive /api/report sends for image and logical tasks.
func (m *Manager) ReportZip(t *store.Task) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := m.ReportFiles(t)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Now()})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// HasReport reports whether a task has ended (or paused) and so has a report.
func HasReport(t *store.Task) bool {
	switch t.State {
	case StateCompleted, StateFailed, StateStopped, StatePaused:
		return true
	}
	return false
}

// writeReport saves the report files beside the image (saveReport), replacing an older report of
// the same task (a paused task is reported again when it completes).
func (m *Manager) writeReport(t *store.Task, tgt target.Target) {
	if tgt == nil || t.ReportDir == "" {
		return
	}
	if err := tgt.MkdirAll(t.ReportDir); err != nil {
		m.log.Warn("report folder", "task", t.Key, "err", err)
		return
	}
	for name, data := range m.ReportFiles(t) {
		p := t.ReportDir + "/" + name
		_ = tgt.Remove(p)
		f, err := tgt.Create(p)
		if err != nil {
			m.log.Warn("write report", "task", t.Key, "file", name, "err", err)
			continue
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			// A truncated report (a full share) would read as the whole story; /api/report has it.
			_ = tgt.Remove(p)
			m.log.Warn("write report", "task", t.Key, "file", name, "err", err)
		}
	}
}
