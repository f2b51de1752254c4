package api

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// The report tests run tasks through the API on the sim board and check each section of
// Report.json against what the test knows independently (the disk's own hashes, the case it
// created, the sectors it made bad, the files it put in a file system), then that Report.html and
// Report.pdf (read by poppler's pdftotext) carry the same values, and that Hashes.txt passes
// md5sum -c / sha1sum -c against the image.

// reportEnv is an API on the sim board whose reports show times in America/New_York.
func reportEnv(t *testing.T, extra ...board.PortDesc) *env {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{t: t, targets: filepath.Join(dir, "targets"), disks: map[string]string{}, zone: loc}
	e.disks["SATA1"] = randomDisk(t, dir, "sata1.img", 4<<20)
	e.disks["SATA3"] = randomDisk(t, dir, "sata3.img", 2<<20)
	desc := board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{
		{Name: "SATA1", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA1"], Model: "SanDisk SDSSDA120G", Serial: "171108456213", Firmware: "Z1"}},
		{Name: "SATA3", Mode: "source", Drive: &board.DriveDesc{Path: e.disks["SATA3"], Model: "ST500LM012 HN-M500MBB", Serial: "S2RWJ9CD415935", BadSectors: []int64{100, 101, 3000}}},
	}}
	desc.Ports = append(desc.Ports, extra...)
	e.serve(dir, desc, io.Discard, "")
	return e
}

// reportFiles reads the report folder of a finished task.
func reportFiles(t *testing.T, dir string) (r report.Report, html, pdfText string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("Report.json: %v", err)
	}
	h, err := os.ReadFile(filepath.Join(dir, "Report.html"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Tool(t, "pdftotext"), "-layout", filepath.Join(dir, "Report.pdf"), "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v: %s", err, out)
	}
	return r, string(h), string(out)
}

// imageReport images a port into targets/NAME/NAME.EXT with the extra query, waits for it to
// complete and returns the image's path, the report folder and its files.
func (e *env) imageReport(port, typ, name, query string) (img, dir string, r report.Report, html, pdf string) {
	t := e.t
	t.Helper()
	key := e.mustStart("/api/start-image?source=" + port + "&targetType=" + typ + "&targetFile=" + name + query + "&targetFolder=" + url.QueryEscape(e.targets+"/"+name))
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("image: %v", m)
	}
	ext := map[string]string{"raw": "raw", "aff4": "aff4", "e01": "E01"}[typ]
	img = filepath.Join(e.targets, name, name+"."+ext)
	dir = filepath.Join(e.targets, name, name+"_"+strings.ToUpper(ext)+"_report")
	r, html, pdf = reportFiles(t, dir)
	return img, dir, r, html, pdf
}

// fileHashes are the MD5 and SHA1 of a file, computed here.
func fileHashes(t *testing.T, path string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, s := md5.Sum(b), sha1.Sum(b)
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// contains fails the test for each value missing from text.
func contains(t *testing.T, what, text string, values ...string) {
	t.Helper()
	for _, v := range values {
		if !strings.Contains(text, v) {
			t.Errorf("%s lacks %q", what, v)
		}
	}
}

// checkSums runs cksum -c on Hashes.txt in its folder: every check line passes and none is
// reported as improperly formatted; md5sum -c and sha1sum -c pass their own lines.
func checkSums(t *testing.T, dir string, wantOK int) {
	t.Helper()
	run := func(tool string) string {
		cmd := exec.Command(testenv.Tool(t, tool), "-c", "Hashes.txt")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s -c Hashes.txt: %v\n%s", tool, err, out)
		}
		return string(out)
	}
	if out := run("cksum"); strings.Count(out, ": OK") != 2*wantOK || strings.Contains(out, "WARNING") {
		t.Errorf("cksum -c Hashes.txt: want %d OK lines and no warning:\n%s", 2*wantOK, out)
	}
	for _, tool := range []string{"md5sum", "sha1sum"} {
		if out := run(tool); strings.Count(out, ": OK") != wantOK {
			t.Errorf("%s -c Hashes.txt: want %d OK lines:\n%s", tool, wantOK, out)
		}
	}
}

// TestReportE01 checks every section of an E01 imaging report: the case (from the request and
// the case record), the source drive with the SMART summary of its diagnose, the acquisition
// named in words with its times in the configured zone, the hashes (equal to the source disk's
// own) with the verification's MATCH, the image file and its size, the audit trail.
func TestReportE01(t *testing.T) {
	e := reportEnv(t)
	e.json("/api/source-drives")
	e.json("/api/create-case?source=SATA1&caseId=CASE-7&evidenceId=EV-3&caseOrganization=City+Police&caseLocation=Lab+2&caseDescription=seized+laptop")
	diag := e.mustStart("/api/diagnose?source=SATA1")
	if m := e.wait(diag); m["state"] != "completed" {
		t.Fatalf("diagnose: %v", m)
	}
	key := e.mustStart("/api/start-image?source=SATA1&targetType=e01&e01Segment=1&e01Compression=fast&e01Inv=Ann+Example&e01Notes=bag+12&targetFolder=" + url.QueryEscape(e.targets+"/e01"))
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("image: %v", m)
	}
	md5sum, sha1sum := fileHashes(t, e.disks["SATA1"])
	base := "SanDisk SDSSDA120G171108456213_0"
	dir := filepath.Join(e.targets, "e01", base+"_E01_report")
	r, html, pdf := reportFiles(t, dir)

	if r.Schema != report.SchemaVersion || r.Kind != "image" || r.Title != "Imaging report" || r.Task.Key != key || r.TimeZone != "America/New_York" ||
		r.Appliance.ID != "EVD0001" || r.Appliance.Software != "evidenced test" {
		t.Errorf("head: %+v %+v %q", r.Task, r.Appliance, r.TimeZone)
	}
	wantCase := report.Case{Number: "CASE-7", Evidence: "EV-3", Examiner: "Ann Example", Description: "seized laptop", Notes: "bag 12",
		Organisation: "City Police", Location: "Lab 2"}
	if r.Case != wantCase {
		t.Errorf("case %+v, want %+v", r.Case, wantCase)
	}
	s := r.Source
	if s.Port != "SATA1" || s.Bus != "sata" || s.Model != "SanDisk SDSSDA120G" || s.Serial != "171108456213" || s.Firmware != "Z1" ||
		s.Size != 4<<20 || s.SectorSize != 512 || !strings.HasPrefix(s.HPA, "none detected") || !strings.HasPrefix(s.WriteBlock, "in force") {
		t.Errorf("source %+v", s)
	}
	if s.SMART == nil || s.SMART.Task != diag || !s.SMART.Supported || !s.SMART.Passed || s.SMART.TemperatureC != 34 {
		t.Errorf("source SMART summary %+v, want the diagnose %s", s.SMART, diag)
	}
	a := r.Acquisition
	if a == nil {
		t.Fatal("no acquisition section")
	}
	if a.Summary != "E01 (EWF, EnCase 6), deflate fast, segments of 1 GiB" || a.Format != "e01" || a.Target != filepath.Join(e.targets, "e01", base+".E01") {
		t.Errorf("acquisition %q %q %q", a.Summary, a.Format, a.Target)
	}
	// Times in the configured zone (November: EST), in order, with a duration and speed that agree.
	if _, off := a.Started.Zone(); off != -5*3600 || a.Ended.Before(a.VerifyStarted) || a.VerifyStarted.Before(a.Started) {
		t.Errorf("times: started %v, verify %v, ended %v", a.Started, a.VerifyStarted, a.Ended)
	}
	if d := a.Ended.Sub(a.Started).Seconds(); a.Seconds <= 0 || a.Seconds-d > 0.001 || d-a.Seconds > 0.001 || a.ImagingSeconds > a.Seconds {
		t.Errorf("duration %v s (imaging %v s), ended-started %v s", a.Seconds, a.ImagingSeconds, d)
	}
	if want := float64(4<<20) / a.ImagingSeconds; a.BytesPerSecond < want*0.999 || a.BytesPerSecond > want*1.001 {
		t.Errorf("speed %v, want %v", a.BytesPerSecond, want)
	}
	if r.Result.State != "completed" || r.Result.UnreadableSectors != 0 || len(r.Result.Unreadable) != 0 || r.Result.Retries != 2 || r.Result.Recovery != nil {
		t.Errorf("result %+v", r.Result)
	}
	h := r.Hashes
	if h == nil || h.Verdict != report.Match || len(h.Rows) != 2 || !strings.Contains(h.Verification, "E01 segments were read back") {
		t.Fatalf("hashes %+v", h)
	}
	for i, want := range [][2]string{{"MD5", md5sum}, {"SHA1", sha1sum}} {
		if row := h.Rows[i]; row.Algorithm != want[0] || row.Acquisition != want[1] || row.Verification != want[1] || row.Verdict != report.Match {
			t.Errorf("hash row %+v, want %s %s", row, want[0], want[1])
		}
	}
	st, err := os.Stat(filepath.Join(e.targets, "e01", base+".E01"))
	if err != nil || len(r.ImageFiles) != 1 || r.ImageFiles[0].Name != base+".E01" || r.ImageFiles[0].Size != st.Size() || r.ImageFiles[0].Hashes != nil {
		t.Errorf("image files %+v (E01 is %v)", r.ImageFiles, st)
	}
	if !strings.Contains(strings.Join(r.Audit, "\n"), "start-image") || len(r.Log) == 0 {
		t.Errorf("audit %q / log %d lines", r.Audit, len(r.Log))
	}
	started := a.Started.Format("2006-01-02 15:04:05 EST")
	startedUTC := a.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	for what, text := range map[string]string{"Report.html": html, "Report.pdf": pdf} {
		contains(t, what, text, md5sum, sha1sum, "MATCH", "E01 (EWF, EnCase 6), deflate fast, segments of 1 GiB", "City Police", "Lab 2",
			"CASE-7", "EV-3", "Ann Example", "171108456213", "4,194,304 bytes", started, startedUTC, "America/New_York", base+".E01", "EVD0001", "evidenced test")
	}
	contains(t, "Report.html", html, "<td>completed</td>", "@page", "section.page")
	// E01 files are not their data stream: Hashes.txt carries the hashes as comments, no check lines.
	hb, _ := os.ReadFile(filepath.Join(dir, "Hashes.txt"))
	contains(t, "Hashes.txt", string(hb), "# acquisition MD5 "+md5sum, "# acquisition SHA1 "+sha1sum)
}

// TestReportRawBadSectors: a raw image of a drive with unreadable sectors lists their ranges
// and counts, the image file's own hashes are those of the file on disk, and Hashes.txt passes
// md5sum -c and sha1sum -c.
func TestReportRawBadSectors(t *testing.T) {
	e := reportEnv(t)
	img, dir, r, html, pdf := e.imageReport("SATA3", "raw", "bad", "&retries=1")
	md5sum, sha1sum := fileHashes(t, img)
	want := []report.Range{{First: 100, Count: 2, Bytes: 1024}, {First: 3000, Count: 1, Bytes: 512}}
	if res := r.Result; len(res.Unreadable) != 2 || res.Unreadable[0] != want[0] || res.Unreadable[1] != want[1] || res.UnreadableSectors != 3 || res.Retries != 1 {
		t.Errorf("result %+v", res)
	}
	if r.Acquisition == nil || r.Acquisition.Summary != "raw (dd), uncompressed, one file" {
		t.Errorf("acquisition %+v", r.Acquisition)
	}
	if h := r.Hashes; h == nil || h.Verdict != report.Match || h.Rows[0].Acquisition != md5sum || h.Rows[1].Acquisition != sha1sum {
		t.Errorf("hashes %+v, the file's are %s %s", h, md5sum, sha1sum)
	}
	if len(r.ImageFiles) != 1 || r.ImageFiles[0].Size != 2<<20 || r.ImageFiles[0].Hashes["MD5"] != md5sum || r.ImageFiles[0].Hashes["SHA1"] != sha1sum {
		t.Errorf("image files %+v", r.ImageFiles)
	}
	contains(t, "Report.html", html, "<td>100</td><td>2</td>", "<td>3000</td><td>1</td>", "3 sectors in 2 range(s)")
	contains(t, "Report.pdf", pdf, md5sum, sha1sum, "3 sectors in 2 range(s)", "3000")
	checkSums(t, dir, 1)
}

// TestReportRawUnverified: without verification the report says NOT VERIFIED and why, and the
// raw file's own hashes (read back for the report) still pass md5sum -c.
func TestReportRawUnverified(t *testing.T) {
	e := reportEnv(t)
	img, dir, r, html, pdf := e.imageReport("SATA1", "raw", "nv", "&verify=false")
	md5sum, _ := fileHashes(t, img)
	if h := r.Hashes; h == nil || h.Verdict != report.NotVerified || h.Rows[0].Verification != "" || !strings.Contains(h.Verification, "turned off") {
		t.Errorf("hashes %+v", r.Hashes)
	}
	if len(r.ImageFiles) != 1 || r.ImageFiles[0].Hashes["MD5"] != md5sum || !r.Acquisition.VerifyStarted.IsZero() {
		t.Errorf("image files %+v", r.ImageFiles)
	}
	contains(t, "Report.html", html, "NOT VERIFIED")
	contains(t, "Report.pdf", pdf, "NOT VERIFIED")
	checkSums(t, dir, 1)
}

// TestReportAFF4: an AFF4 container's own hashes (of the .aff4 file's bytes, not its data
// stream) are listed and pass md5sum -c; the acquisition hashes are the source disk's.
func TestReportAFF4(t *testing.T) {
	e := reportEnv(t)
	img, dir, r, html, pdf := e.imageReport("SATA1", "aff4", "c", "")
	fileMD5, fileSHA1 := fileHashes(t, img)
	diskMD5, _ := fileHashes(t, e.disks["SATA1"])
	if r.Acquisition == nil || r.Acquisition.Summary != "AFF4, lz4 compression, one container" || r.Hashes == nil ||
		r.Hashes.Rows[0].Acquisition != diskMD5 || r.Hashes.Verdict != report.Match {
		t.Errorf("acquisition %+v hashes %+v", r.Acquisition, r.Hashes)
	}
	if len(r.ImageFiles) != 1 || r.ImageFiles[0].Name != "c.aff4" || r.ImageFiles[0].Hashes["MD5"] != fileMD5 || r.ImageFiles[0].Hashes["SHA1"] != fileSHA1 {
		t.Errorf("image files %+v, the file's own MD5 %s", r.ImageFiles, fileMD5)
	}
	contains(t, "Report.html", html, fileMD5, diskMD5)
	contains(t, "Report.pdf", pdf, fileMD5, diskMD5)
	checkSums(t, dir, 1)
}

// TestReportDiagnose: SMART attributes with thresholds and verdicts (a drive whose SMART fails
// has its failing attribute named), the surface test's unreadable sectors on the map's regions.
func TestReportDiagnose(t *testing.T) {
	failed := false
	e := reportEnv(t, board.PortDesc{Name: "SATA5", Mode: "source", Drive: &board.DriveDesc{Path: randomDisk(t, t.TempDir(), "f.img", 1<<20),
		Model: "Failing", Serial: "F1", SMART: &board.SMART{Passed: &failed}}})
	key := e.mustStart("/api/diagnose?source=SATA3&reportFolder=" + url.QueryEscape(e.targets+"/diag"))
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("diagnose: %v", m)
	}
	dir := filepath.Join(e.targets, "diag", "ST500LM012 HN-M500MBBS2RWJ9CD415935_diagnose_0")
	r, html, pdf := reportFiles(t, dir)
	d := r.Diagnose
	if r.Kind != "diagnose" || d == nil || r.Acquisition != nil || r.Hashes != nil {
		t.Fatalf("diagnose report: kind %q, diagnose %v", r.Kind, d)
	}
	attr := map[int]report.Attribute{}
	for _, a := range d.SMART.Attributes {
		attr[a.ID] = a
	}
	if a := attr[197]; !d.SMART.Supported || !d.SMART.Passed || a.Raw != "3" || a.Verdict != report.AttrOK || attr[5].Threshold != 36 || !attr[5].PreFail {
		t.Errorf("SMART %+v", d.SMART)
	}
	sf := d.Surface
	if sf.Bytes != 2<<20 || sf.UnreadableSectors != 3 || len(sf.Unreadable) != 2 || len(sf.Map) == 0 {
		t.Fatalf("surface %+v", sf)
	}
	var total, bad int64
	for _, g := range sf.Map {
		total += g.Bytes
		bad += g.Unreadable
		first, last := g.Offset/512, (g.Offset+g.Bytes)/512
		var want int64
		for _, lba := range []int64{100, 101, 3000} {
			if lba >= first && lba < last {
				want++
			}
		}
		if g.Unreadable != want {
			t.Errorf("region at %d: %d unreadable sectors, want %d", g.Offset, g.Unreadable, want)
		}
	}
	if total != 2<<20 || bad != 3 {
		t.Errorf("map covers %d bytes with %d unreadable sectors", total, bad)
	}
	if r.Source.SMART == nil || r.Source.SMART.Task != key || r.Result.UnreadableSectors != 3 {
		t.Errorf("source %+v, result %+v", r.Source.SMART, r.Result)
	}
	contains(t, "Report.html", html, "<svg", "Surface map", "Current_Pending_Sector", "Threshold", "unreadable sectors</title>")
	contains(t, "Report.pdf", pdf, "Current_Pending_Sector", "Reallocated_Sector_Ct", "Surface map", "S2RWJ9CD415935")

	key = e.mustStart("/api/diagnose?source=SATA5&reportFolder=" + url.QueryEscape(e.targets+"/diag"))
	e.wait(key)
	r, html, _ = reportFiles(t, filepath.Join(e.targets, "diag", "FailingF1_diagnose_0"))
	for _, a := range r.Diagnose.SMART.Attributes {
		if (a.ID == 5) != (a.Verdict == report.AttrFailingNow) {
			t.Errorf("attribute %d %s: %s", a.ID, a.Name, a.Verdict)
		}
	}
	if r.Diagnose.SMART.Passed || r.Result.Details != "SMART overall health FAILED" {
		t.Errorf("failing drive: %+v %q", r.Diagnose.SMART, r.Result.Details)
	}
	contains(t, "Report.html", html, "FAILING NOW")
}

// TestReportLogical: a zip of a small FAT file system: the volume summary counts what the test
// put there, the file list is complete in Report.json and Files.csv with each file's MD5, the
// HTML pages it, and Hashes.txt checks the zip.
func TestReportLogical(t *testing.T) {
	mkfs, mcopy, mdel := testenv.Tool(t, "mkfs.vfat"), testenv.Tool(t, "mcopy"), testenv.Tool(t, "mdel")
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	if out, err := exec.Command(mkfs, "-C", "-n", "EVIDENCE", img, "8192").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v %s", err, out)
	}
	files := map[string]string{"A.TXT": "alpha\n", "B.TXT": strings.Repeat("bravo ", 500), "GONE.TXT": "deleted later\n"}
	want := map[string]string{}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(mcopy, "-i", img, p, "::/"+name).CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v %s", err, out)
		}
		sum := md5.Sum([]byte(content))
		want[name] = hex.EncodeToString(sum[:])
	}
	if out, err := exec.Command(mdel, "-i", img, "::/GONE.TXT").CombinedOutput(); err != nil {
		t.Fatalf("mdel: %v %s", err, out)
	}
	e := reportEnv(t, board.PortDesc{Name: "USB2", Mode: "source", Drive: &board.DriveDesc{Path: img, Model: "Stick", Serial: "U1"}})
	key := e.mustStart("/api/start-logical?source=USB2&targetType=zip&targetFolder=" + url.QueryEscape(e.targets+"/zip"))
	if m := e.wait(key); m["state"] != "completed" {
		t.Fatalf("logical: %v", m)
	}
	rdir := filepath.Join(e.targets, "zip", "StickU1_0_ZIP_report")
	r, html, pdf := reportFiles(t, rdir)
	l := r.Logical
	if l == nil || len(l.Volumes) != 1 || r.Acquisition == nil || r.Acquisition.Summary != "zip, deflate compression" {
		t.Fatalf("logical report %+v %+v", l, r.Acquisition)
	}
	byPath := map[string]report.File{}
	for _, f := range l.Files {
		byPath[f.Path] = f
	}
	v := l.Volumes[0]
	var live, deleted int
	var bytes int64
	for name, sum := range want {
		f, ok := byPath[v.Name+"/"+name]
		if name == "GONE.TXT" {
			// FAT keeps a deleted entry with its first letter lost: find it by being deleted.
			for _, g := range l.Files {
				if g.Deleted {
					f, ok = g, true
				}
			}
		}
		if !ok || f.Size != int64(len(files[name])) {
			t.Errorf("%s: %+v (in list: %v)", name, f, ok)
			continue
		}
		if f.Deleted {
			deleted++
		} else {
			live++
			if f.MD5 != sum {
				t.Errorf("%s: MD5 %s, want %s", name, f.MD5, sum)
			}
		}
		bytes += f.Size
	}
	if v.Files != live+deleted || v.Deleted != deleted || v.Bytes != bytes || v.Errors != 0 || !strings.HasPrefix(v.FS, "fat") || deleted != 1 {
		t.Errorf("volume %+v; want %d files (%d deleted), %d bytes", v, live+deleted, deleted, bytes)
	}
	// Files.csv: the whole list, one line each, with the same hashes.
	cf, err := os.Open(filepath.Join(rdir, "Files.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	recs, err := csv.NewReader(cf).ReadAll()
	if err != nil || len(recs) != len(l.Files)+1 {
		t.Fatalf("Files.csv: %v, %d lines for %d files", err, len(recs), len(l.Files))
	}
	for _, rec := range recs[1:] {
		if f := byPath[rec[0]]; f.MD5 != rec[5] {
			t.Errorf("Files.csv %q: MD5 %s, Report.json %s", rec[0], rec[5], f.MD5)
		}
	}
	contains(t, "Report.html", html, "<details open><summary>Entries 1–", want["A.TXT"], v.Name)
	contains(t, "Report.pdf", pdf, want["A.TXT"], want["B.TXT"], "Volumes")
	checkSums(t, rdir, 1)

	// /api/report streams the same files as an archive, rendered again from the same record: the
	// ones without a generation time are the folder's bytes, Report.json lists the same entries.
	zipped, members := e.reportArchive(key)
	onDisk, err := os.ReadDir(rdir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range onDisk {
		names = append(names, d.Name())
	}
	for _, name := range []string{"Files.csv", "Hashes.txt", "Log.txt"} {
		if d, _ := os.ReadFile(filepath.Join(rdir, name)); members[name] != string(d) || len(d) == 0 {
			t.Errorf("%s: %d bytes in the zip, %d in the report folder, not the same", name, len(members[name]), len(d))
		}
	}
	var zr report.Report
	if err := json.Unmarshal([]byte(members["Report.json"]), &zr); err != nil || zr.Logical == nil || !reflect.DeepEqual(zr.Logical.Files, l.Files) {
		t.Errorf("Report.json in the zip: %v; its file list differs from the folder's", err)
	}
	if !slices.Equal(names, zipped) {
		t.Errorf("report zip holds %v, the folder %v", zipped, names)
	}
}
