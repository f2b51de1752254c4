package tasks

import (
	"archive/zip"
	"bufio"
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

// reportFile is one file of a task's report and how to render it.
type reportFile struct {
	name  string
	write func(io.Writer) error
}

// reportFiles lists the report of a task: Report.html, Report.pdf, Report.json, Hashes.txt,
// Log.txt, Audit.txt and, for a logical task, Files.csv, in name order, each rendered from one model
// only when it is written. A logical task's file list makes each of them large (Report.json of the
// 52,760 entries of the 2 GiB corpus is about 10 MB): they go to their destination as they are
// rendered, never all held in memory at once.
func (m *Manager) reportFiles(t *store.Task) []reportFile {
	r := m.Report(t)
	with := func(write func(io.Writer, *report.Report) error) func(io.Writer) error {
		return func(w io.Writer) error { return write(w, r) }
	}
	lines := func(l []string) func(io.Writer) error {
		return func(w io.Writer) error {
			for _, s := range l {
				if _, err := io.WriteString(w, s+"\n"); err != nil {
					return err
				}
			}
			return nil
		}
	}
	files := []reportFile{
		{"Audit.txt", lines(r.Audit)}, {"Hashes.txt", with(report.WriteHashes)}, {"Log.txt", lines(t.Log)},
		{"Report.html", with(report.WriteHTML)}, {"Report.json", with(report.WriteJSON)}, {"Report.pdf", with(report.WritePDF)},
	}
	if r.Logical != nil {
		files = append(files, reportFile{"Files.csv", func(w io.Writer) error { return report.WriteFilesCSV(w, r.Logical) }})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files
}

// WriteReportHTML writes the HTML report of a task (the one file of a diagnose task's report).
func (m *Manager) WriteReportHTML(w io.Writer, t *store.Task) error {
	return report.WriteHTML(w, m.Report(t))
}

// WriteReportZip writes the report archive /api/report sends for image and logical tasks. The
// files are rendered one at a time, each into one reused buffer before its entry is written: a
// renderer that fails leaves its file out (and the daemon's log says so) rather than a truncated
// entry, and the archive is never held whole in memory.
func (m *Manager) WriteReportZip(w io.Writer, t *store.Task) error {
	zw := zip.NewWriter(w)
	var b bytes.Buffer
	for _, f := range m.reportFiles(t) {
		b.Reset()
		if err := f.write(&b); err != nil {
			m.log.Error("render report", "task", t.Key, "file", f.name, "err", err)
			continue
		}
		e, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Now()})
		if err != nil {
			return fmt.Errorf("report archive: %w", err)
		}
		if _, err := e.Write(b.Bytes()); err != nil {
			return fmt.Errorf("report archive: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("report archive: %w", err)
	}
	return nil
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

// HasReport reports whether a task has ended (or paused) and so has a report.
func HasReport(t *store.Task) bool {
	switch t.State {
	case StateCompleted, StateFailed, StateStopped, StatePaused:
		return true
	}
	return false
}

// writeReport saves the report files beside the image (saveReport), replacing an older report of
// the same task (a paused task is reported again when it completes). The files are rendered at
// once, each straight into its file: the PDF and HTML of a logical task's file list (52,041 rows
// for the 2 GiB corpus) took most of the second between its copy and its end one after another.
func (m *Manager) writeReport(t *store.Task, tgt target.Target) {
	if tgt == nil || t.ReportDir == "" {
		return
	}
	if err := tgt.MkdirAll(t.ReportDir); err != nil {
		m.log.Warn("report folder", "task", t.Key, "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, rf := range m.reportFiles(t) {
		wg.Go(func() {
			if err := writeReportFile(tgt, t.ReportDir+"/"+rf.name, rf.write); err != nil {
				m.log.Warn("write report", "task", t.Key, "file", rf.name, "err", err)
			}
		})
	}
	wg.Wait()
}

// writeReportFile renders one report file into a new file at p through a buffer (a share takes
// few large writes better than the renderers' many small ones). A file it could not write whole
// is removed: a truncated report (a full share) would read as the whole story; /api/report has it.
func writeReportFile(tgt target.Target, p string, write func(io.Writer) error) error {
	_ = tgt.Remove(p)
	f, err := tgt.Create(p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = tgt.Remove(p)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
