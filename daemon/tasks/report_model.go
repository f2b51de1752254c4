package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	"github.com/evidenced/evidenced/imaging/diagnose"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/store"
)

// reportTitles name the reports by task kind.
var reportTitles = map[string]string{KindImage: "Imaging report", KindLogical: "Logical imaging report", KindDiagnose: "Diagnostics report"}

// location is the zone the reports show times in.
func (m *Manager) location() *time.Location {
	if m.cfg.TimeZone != nil {
		return m.cfg.TimeZone
	}
	return time.Local
}

// Report fills the report model of a task from its record, its case and the audit log.
func (m *Manager) Report(t *store.Task) *report.Report {
	loc := m.location()
	in := func(x time.Time) time.Time {
		if x.IsZero() {
			return x
		}
		return x.In(loc)
	}
	r := &report.Report{
		Schema: report.SchemaVersion, Kind: t.Kind, Title: reportTitles[t.Kind], Generated: time.Now().In(loc), TimeZone: loc.String(),
		Appliance: report.Appliance{ID: m.cfg.ApplianceID, Software: m.cfg.Software},
		Task:      report.Task{Key: t.Key, Owner: t.Owner},
		Case:      m.reportCase(t),
		Source: report.Source{Port: t.Port, Bus: t.Bus, Model: t.Model, Serial: t.Serial, Firmware: t.Firmware, Size: t.Size,
			SectorSize: t.SectorSize, HPA: hpaText(t), DCO: "not checked (this appliance does not read the DCO)",
			WriteBlock: firstNonEmpty(t.WriteBlock, "not recorded for this task")},
		Result: report.Result{State: t.State, Message: t.Message, Details: t.Details, Incomplete: incomplete(t),
			BytesDone: t.BytesDone, BytesTotal: t.BytesTotal, Retries: t.Options.Retries, Recovery: t.Recovery,
			Unreadable: []report.Range{}},
		Audit: m.auditLines(t.Key),
		Log:   append([]string{}, t.Log...),
	}
	sector := int64(max(t.SectorSize, 512))
	for _, b := range t.BadSectors {
		r.Result.Unreadable = append(r.Result.Unreadable, report.Range{First: b.First, Count: b.Count, Bytes: b.Count * sector})
		r.Result.UnreadableSectors += b.Count
	}
	extra, legacy, err := report.ParseExtra(t.ReportExtra)
	if err != nil {
		m.log.Error("report section of a task", "task", t.Key, "err", err)
	}
	r.Diagnose, r.Logical, r.LegacyHTML = extra.Diagnose, extra.Logical, legacy
	if r.Logical != nil {
		r.Logical.Summarize()
	}
	if t.Kind == KindDiagnose {
		r.Result.Retries = diagnose.Retries
		if d := r.Diagnose; d != nil {
			r.Source.SMART = smartSummary(t.Key, in(t.Started), d.SMART)
		}
		return r
	}
	r.Source.SMART = m.latestSMART(t)
	summary, settings := report.Describe(t.Options)
	a := &report.Acquisition{Format: string(t.Options.Format), Summary: summary, Settings: settings, Target: t.Target,
		Started: in(t.Started), Ended: in(t.Completed), VerifyStarted: in(t.VerifyStarted)}
	if !t.Completed.IsZero() {
		// Time paused is not working time: the durations and the speed leave it out.
		paused := t.Paused(t.Started, t.Completed)
		a.PausedSeconds = paused.Seconds()
		a.Seconds = (t.Completed.Sub(t.Started) - paused).Seconds()
		a.ImagingSeconds = a.Seconds
		if !t.VerifyStarted.IsZero() {
			a.ImagingSeconds = (t.VerifyStarted.Sub(t.Started) - t.Paused(t.Started, t.VerifyStarted)).Seconds()
		}
		if a.ImagingSeconds > 0 {
			a.BytesPerSecond = float64(t.BytesDone) / a.ImagingSeconds
			if t.Kind == KindImage && t.State == StateCompleted {
				a.BytesPerSecond = float64(t.Size) / a.ImagingSeconds // BytesDone counts the verification's step
			}
		}
	}
	r.Acquisition = a
	r.Hashes = reportHashes(t)
	for _, f := range t.ImageFiles {
		r.ImageFiles = append(r.ImageFiles, report.ImageFile{Name: f.Name, Size: f.Size, Hashes: f.Hashes})
	}
	return r
}

// reportCase joins the case fields of the request with the case record's.
func (m *Manager) reportCase(t *store.Task) report.Case {
	c := t.Options.Case
	out := report.Case{Number: firstNonEmpty(c.Number, t.CaseID), Evidence: firstNonEmpty(c.Evidence, t.EvidenceID),
		Examiner: c.Examiner, Description: c.Description, Notes: c.Notes}
	if t.CaseID == "" {
		return out
	}
	rec, err := m.st.CaseByID(t.CaseID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Warn("case of a report", "task", t.Key, "case", t.CaseID, "err", err)
		}
		return out
	}
	out.Organisation, out.Location = rec.CaseOrganization, rec.CaseLocation
	out.Examiner = firstNonEmpty(out.Examiner, rec.CaseExaminer)
	out.Description = firstNonEmpty(out.Description, rec.CaseDescription)
	for _, e := range rec.Evidence {
		if e.EvidenceID == t.EvidenceID && out.Examiner == "" {
			out.Examiner = e.EvidenceExaminer
		}
	}
	return out
}

func hpaText(t *store.Task) string {
	switch {
	case t.NativeSize > t.Size:
		return fmt.Sprintf("present: the drive's native size is %s; the HPA hides %s that were not read", report.Bytes(t.NativeSize), report.Bytes(t.NativeSize-t.Size))
	case t.Bus == "":
		return "not recorded for this task"
	case t.Bus == "nvme":
		return "not applicable (NVMe drives have no HPA)"
	}
	return "none detected (ATA drives are asked for their native size; others report none)"
}

// latestSMART is the SMART summary of the newest completed diagnose of the task's drive.
func (m *Manager) latestSMART(t *store.Task) *report.SMARTSummary {
	all, err := m.st.Tasks()
	if err != nil {
		return nil
	}
	for _, d := range all { // newest first
		if d.Kind != KindDiagnose || d.Model != t.Model || d.Serial != t.Serial || d.State != StateCompleted {
			continue
		}
		full, err := m.st.Task(d.Key)
		if err != nil {
			return nil
		}
		extra, _, err := report.ParseExtra(full.ReportExtra)
		if err != nil || extra.Diagnose == nil {
			continue
		}
		return smartSummary(d.Key, d.Started.In(m.location()), extra.Diagnose.SMART)
	}
	return nil
}

func smartSummary(key string, at time.Time, h report.Health) *report.SMARTSummary {
	return &report.SMARTSummary{Task: key, At: at, Supported: h.Supported, Passed: h.Passed, TemperatureC: h.TemperatureC,
		PowerOnHours: h.PowerOnHours, Reallocated: h.Reallocated, PendingSectors: h.PendingSectors}
}

// reportHashes lists the acquisition hashes beside the verification's and says what was re-read.
func reportHashes(t *store.Task) *report.Hashes {
	if len(t.Hashes) == 0 {
		return nil
	}
	h := &report.Hashes{Covers: hashesCover(t)}
	algs := slices.Collect(maps.Keys(t.Hashes))
	slices.SortFunc(algs, digest.Compare)
	mismatch := false
	for _, a := range algs {
		row := report.HashRow{Algorithm: a, Acquisition: t.Hashes[a], Verification: t.VerifyHashes[a], Verdict: report.NotVerified}
		switch {
		case row.Verification != "" && row.Verification == row.Acquisition:
			row.Verdict = report.Match
		case row.Verification != "":
			row.Verdict, mismatch = report.Mismatch, true
		case t.Verified: // a logical container verifies inside its writer; it keeps no second hash
			row.Verdict = report.Match
		}
		h.Rows = append(h.Rows, row)
	}
	reread := map[options.Format]string{
		options.E01:  "the E01 segments were read back from the target through evidenced's EWF reader, their data stream decompressed and hashed again",
		options.AFF4: "the AFF4 container was read back from the target through evidenced's AFF4 reader, its data stream decompressed and hashed again",
		options.Raw:  "the raw image file was read back from the target and hashed again",
		options.L01:  "the L01 was read back from the target: every file's content hashed again against its stored MD5/SHA1, and the container's data stream against the hashes above",
		options.Zip:  "the zip was read back from the target: every member checked against its CRC and hashes, and the archive's bytes hashed again",
	}[t.Options.Format]
	switch {
	case mismatch:
		h.Verdict = report.Mismatch
		h.Verification = reread + ", and the hashes DIFFER from those computed while reading the source: the image is not a faithful copy"
	case t.Verified:
		h.Verdict = report.Match
		h.Verification = reread + ", and every hash equals the one computed while reading the source"
	case !t.Options.Verify:
		h.Verdict = report.NotVerified
		h.Verification = "verification was turned off for this task: the image was not read back"
	default:
		h.Verdict = report.NotVerified
		h.Verification = "the task ended (" + t.State + ") before the image was read back"
	}
	return h
}

// recordDrive keeps the source drive's identity and write-block state with the task.
func recordDrive(t *store.Task, p hal.Port, id hal.Identity) {
	t.Firmware, t.Bus, t.SectorSize, t.NativeSize = id.Firmware, id.Bus, id.SectorSize, id.NativeSize
	if p.Mode() == hal.ModeSource {
		t.WriteBlock = "in force: the drive is on a source port, read only (write-blocked in the kernel on the appliance; opened read-only on the simulated board); evidenced never opens a source drive for writing"
	} else {
		t.WriteBlock = "NOT in force: the port was in target mode"
	}
}

// imageFileNames are the files of the task's image or container on its target, in order.
func imageFileNames(t *store.Task, tgt target.Target) []string {
	seg := map[options.Format]func(string, int) string{options.E01: ewf.SegmentName, options.L01: ewf.LogicalSegmentName}[t.Options.Format]
	if seg == nil {
		return []string{t.TargetBase + "." + t.Options.Format.Extension()}
	}
	var out []string
	for n := 1; ; n++ {
		name := seg(t.TargetBase, n)
		if _, err := tgt.Stat(name); err != nil {
			return out
		}
		out = append(out, name)
	}
}

// recordImageFiles keeps the names and sizes of the image's files as they are on the target,
// with the own hashes already computed.
func recordImageFiles(t *store.Task, tgt target.Target) {
	if t.TargetBase == "" || t.Options.Format == "" {
		return
	}
	known := map[string]map[string]string{}
	for _, f := range t.ImageFiles {
		known[f.Name] = f.Hashes
	}
	t.ImageFiles = t.ImageFiles[:0]
	for _, name := range imageFileNames(t, tgt) {
		size, err := tgt.Stat(name)
		if err != nil {
			continue
		}
		t.ImageFiles = append(t.ImageFiles, store.ImageFile{Name: name, Size: size, Hashes: known[name]})
	}
}

// ownHashes records the image file's own hashes; the image is complete and verified whatever
// happens here, so a failure (or a stop) only leaves them out, and the log says so.
func (m *Manager) ownHashes(ctx context.Context, t *store.Task, tgt target.Target) {
	if err := m.hashImageFiles(ctx, t, tgt); err != nil {
		m.logf(t, "the image file's own hashes were not computed: %v", err)
	}
}

// hashImageFiles hashes the bytes of a raw or AFF4 image's file, for the report's image files
// and Hashes.txt. A raw file's verification already read it back and hashed it: those hashes are
// its own and it is not read a third time.
func (m *Manager) hashImageFiles(ctx context.Context, t *store.Task, tgt target.Target) error {
	name := t.TargetBase + "." + t.Options.Format.Extension()
	var sums map[string]string
	switch {
	case t.Options.Format == options.Raw && t.Verified && len(t.VerifyHashes) > 0:
		sums = t.VerifyHashes
	case t.Options.Format == options.Raw || t.Options.Format == options.AFF4:
		r, err := tgt.Open(name)
		if err != nil {
			return fmt.Errorf("hash %s: %w", tgt.Display(name), err)
		}
		defer r.Close()
		// No progress of its own: a third step would move the task's percent back.
		if sums, err = pipeline.HashStream(ctx, r, t.Options.Hashes, func(int64) {}); err != nil {
			return fmt.Errorf("hash %s: %w", tgt.Display(name), err)
		}
		m.logf(t, "image file %s: %s", name, formatSums(sums))
	default:
		return nil
	}
	t.ImageFiles = []store.ImageFile{{Name: name, Hashes: sums}}
	return nil
}

func formatSums(sums map[string]string) string {
	algs := slices.Collect(maps.Keys(sums))
	slices.SortFunc(algs, digest.Compare)
	var parts []string
	for _, a := range algs {
		parts = append(parts, a+" "+sums[a])
	}
	return strings.Join(parts, ", ")
}
