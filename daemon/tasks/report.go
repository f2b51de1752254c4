package tasks

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/store"
)

// ReportFiles renders the report of a task: Report.html, Report.pdf, Report.json, Hashes.txt,
// Log.txt, Audit.txt and, for a logical task, Files.csv. A writer that fails leaves its file out
// (and says so in the daemon's log): the others still reach the examiner.
func (m *Manager) ReportFiles(t *store.Task) map[string][]byte {
	r := m.Report(t)
	out := map[string][]byte{
		"Log.txt":   []byte(strings.Join(t.Log, "\n") + "\n"),
		"Audit.txt": []byte(strings.Join(r.Audit, "\n") + "\n"),
	}
	writers := map[string]func(io.Writer, *report.Report) error{
		"Report.html": report.WriteHTML, "Report.pdf": report.WritePDF, "Report.json": report.WriteJSON, "Hashes.txt": report.WriteHashes,
	}
	if r.Logical != nil {
		writers["Files.csv"] = func(w io.Writer, r *report.Report) error { return report.WriteFilesCSV(w, r.Logical) }
	}
	// Rendered at once: they only read r, and the PDF and HTML of a logical task's file list
	// (52,041 rows for the 2 GiB corpus) took most of the second between its copy and its end.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, write := range writers {
		wg.Go(func() {
			var b bytes.Buffer
			if err := write(&b, r); err != nil {
				m.log.Error("render report", "task", t.Key, "file", name, "err", err)
				return
			}
			mu.Lock()
			out[name] = b.Bytes()
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// hashesCover says what a task's hashes are computed over, for the report.
func hashesCover(t *store.Task) string {
	switch {
	case t.Kind == KindLogical && t.Options.Format == options.L01:
		return "The hashes cover the L01's logical data stream: the content of every copied file, in the order stored, " +
			"as libewf's ewfverify computes it; they are stored in the L01's hash and digest sections (not a hash of the .L01 file's bytes)."
	case t.Kind == KindLogical:
		return "The hashes cover the " + t.Options.Format.Extension() + " file as written, byte for byte (each file's own hashes are in the list below)."
	case t.Kind == KindImage:
		return "The hashes cover the source drive's data as read (unreadable sectors zero-filled), which is the image's data stream: " +
			"ewfverify, the AFF4 stored hash or md5sum of the raw file give the same values."
	}
	return ""
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
