package api

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// corpusVolumes are the partitions mkdisk.sh makes, by the folder names logical imaging gives them.
var corpusVolumes = []struct {
	folder, fs string
	index      int
}{{"p1-ext4", "ext4", 1}, {"p2-fat32", "fat32", 2}, {"p3-ntfs", "ntfs", 3}}

// partitionStarts reads the corpus' partition table with sfdisk (independent of our parser).
func partitionStarts(t *testing.T, img string) map[int]int64 {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "sfdisk"), "-J", img).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var j struct {
		PT struct {
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatal(err)
	}
	starts := map[int]int64{}
	for i, p := range j.PT.Partitions {
		starts[i+1] = p.Start
	}
	return starts
}

// corpusFiles is what SleuthKit says the corpus holds: container path -> fls entry.
func corpusFiles(t *testing.T, img string) (map[string]testenv.TSKFile, map[string]int64) {
	t.Helper()
	starts := partitionStarts(t, img)
	all := map[string]testenv.TSKFile{}
	offsetOf := map[string]int64{}
	for _, v := range corpusVolumes {
		files := testenv.SleuthKitFiles(t, img, starts[v.index], v.fs, "r/r", "l/l")
		if len(files) < 300 {
			t.Fatalf("%s: fls lists only %d files; the corpus is too small to judge", v.folder, len(files))
		}
		for p, f := range files {
			all[v.folder+"/"+p] = f
			offsetOf[v.folder+"/"+p] = starts[v.index]
		}
	}
	return all, offsetOf
}

// Under the race detector (testenv.Race) the logical tests that copy every file of the corpus copy
// the files of at most raceMaxFileSize bytes, through a saved preset: every volume and entry is
// still scanned, and what is copied is judged against fls as the whole is; the data pushed through
// pure-Go hashing, compression and verification drops from ~230 MiB to ~53 MiB (9,615 of 10,611
// files). The detector slows that 5-10 times, and it finds no race in the rest that it does not
// find in these.
const raceMaxFileSize = 32 << 10

// raceSubset saves that preset under -race and returns the query parameter that applies it and
// whether fls's file f is among those copied; without -race, no parameter and every file.
func raceSubset(t *testing.T, e *env) (query string, keep func(f testenv.TSKFile) bool) {
	t.Helper()
	if !testenv.Race {
		return "", func(testenv.TSKFile) bool { return true }
	}
	preset := fmt.Sprintf(`{"name": "race subset", "maxSize": %d}`, raceMaxFileSize)
	if code, body := e.postJSON("/api/settings", preset); code != http.StatusCreated {
		t.Fatalf("POST /api/settings: %d %s", code, body)
	}
	return "&settings=race+subset", func(f testenv.TSKFile) bool { return f.Size <= raceMaxFileSize }
}

func corpusEnv(t *testing.T) (*env, string) {
	corpus := testenv.Corpus(t)
	return newEnv(t, board.PortDesc{Name: "SAS1", Mode: "source",
		Drive: &board.DriveDesc{Path: corpus, Model: "Evidence Disk", Serial: "CORPUS1"}}), corpus
}

type treeFile struct {
	size int64
	md5  string
}

// readTree lists the regular files below root with their MD5.
func readTree(t *testing.T, root string) map[string]treeFile {
	t.Helper()
	out := map[string]treeFile{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := md5.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = treeFile{n, hex.EncodeToString(h.Sum(nil))}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// TestLogicalL01MatchesSleuthKit images the three partitions of the mkdisk corpus into an L01 and
// opens it with libewf (ewfmount -f files): exactly the files fls lists (under -race those
// raceSubset keeps), with their sizes, and contents equal to icat's (a sample) and to the hashes
// stored per file (all).
func TestLogicalL01MatchesSleuthKit(t *testing.T) {
	ewfmount := testenv.Tool(t, "ewfmount")
	if os.Geteuid() != 0 {
		t.Skip("ewfmount (FUSE) needs root")
	}
	e, corpus := corpusEnv(t)
	subset, keep := raceSubset(t, e)
	before := testenv.FileMD5(t, corpus)
	key := e.mustStart("/api/start-logical?source=SAS1&targetFolder=" + url.QueryEscape(e.targets+"/lab") +
		"&l01Case=CASE-9&l01Evid=EV-1&l01Inv=Ann+Example&l01Desc=seized+laptop" + subset)
	m := e.wait(key)
	if m["state"] != "completed" || m["message"] != "completed" || m["verified"] != true {
		t.Fatalf("task: %v", m)
	}
	if m["task"] != "logical" || !strings.HasSuffix(m["target"].(string), "Evidence DiskCORPUS1_0.L01") {
		t.Fatalf("check-task: %v", m)
	}
	l01 := filepath.Join(e.targets, "lab", "Evidence DiskCORPUS1_0.L01")

	mnt := t.TempDir()
	if out, err := exec.Command(ewfmount, "-f", "files", l01, mnt).CombinedOutput(); err != nil {
		t.Fatalf("ewfmount -f files: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	// ewfmount shows the tree below one folder named after the logical evidence's root.
	root := mnt
	if ents, _ := os.ReadDir(mnt); len(ents) == 1 && ents[0].IsDir() && !strings.HasPrefix(ents[0].Name(), "p") {
		root = filepath.Join(mnt, ents[0].Name())
	}
	got := readTree(t, root)
	want, offsets := corpusFiles(t, corpus)
	maps.DeleteFunc(want, func(_ string, f testenv.TSKFile) bool { return !keep(f) })
	lr, err := ewf.OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	// check-task's hashes are those of the L01's data stream, as stored in it.
	if h, _ := m["hashes"].(map[string]any); h == nil || h["MD5"] != lr.StreamHashes()["MD5"] || h["MD5"] == "" {
		t.Errorf("check-task hashes %v, L01 stream %v", m["hashes"], lr.StreamHashes())
	}
	stored := map[string]ewf.FileHashes{}
	deleted := map[string]bool{}
	for _, f := range lr.Entries() {
		stored[f.Path] = f.Hashes
		if f.Deleted {
			deleted[f.Path] = true
		}
	}
	var missing, extra, wrong []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			missing = append(missing, p)
		case g.size != w.Size:
			wrong = append(wrong, p+": size")
		case g.md5 != stored[p].MD5:
			wrong = append(wrong, p+": content differs from the stored MD5")
		}
	}
	for p, g := range got {
		if _, ok := want[p]; ok {
			continue
		}
		// ewfmount shows an empty folder as an empty file (a bug of its own); deleted entries are
		// recovered extras fls lists separately.
		if deleted[p] || (g.size == 0 && stored[p] == (ewf.FileHashes{})) {
			continue
		}
		extra = append(extra, p)
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra)+len(wrong) > 0 {
		t.Fatalf("L01 vs fls: %d missing %.10q, %d extra %.10q, %d wrong %.10q", len(missing), missing, len(extra), extra, len(wrong), wrong)
	}
	// Contents against SleuthKit's icat for a sample of every volume's regular files (icat returns
	// zeros for an ext4 fast symlink, whose target lives in the inode; we store the target).
	n := 0
	for _, p := range sortedKeys(want) {
		if want[p].Type != "r/r" {
			continue
		}
		if n%40 == 0 {
			data := testenv.ICat(t, corpus, offsets[p], want[p].Inode)
			if sum := md5.Sum(data); hex.EncodeToString(sum[:]) != got[p].md5 {
				t.Errorf("%s: content differs from icat", p)
			}
		}
		n++
	}
	meta := lr.Metadata()
	if meta.CaseNumber != "CASE-9" || meta.EvidenceNumber != "EV-1" || meta.Examiner != "Ann Example" {
		t.Errorf("L01 metadata: %+v", meta)
	}
	// ewfverify finds the stream's MD5 stored in the L01, recomputes it, and both equal
	// check-task's (issue 14, point 11).
	out, err := exec.Command(testenv.Tool(t, "ewfverify"), "-q", l01).CombinedOutput()
	md5 := m["hashes"].(map[string]any)["MD5"].(string)
	if err != nil || !strings.Contains(string(out), "MD5 hash stored in file:\t\t"+md5+"\n") ||
		!strings.Contains(string(out), "MD5 hash calculated over data:\t\t"+md5+"\n") || !strings.Contains(string(out), "ewfverify: SUCCESS") {
		t.Errorf("ewfverify (want stored and calculated MD5 %s): %v: %s", md5, err, out)
	}
	// The report lists the files with their hashes.
	rep := e.reportMember(key, "Report.html")
	sample := sortedKeys(want)[len(want)/2]
	if !strings.Contains(rep, sample) || !strings.Contains(rep, stored[sample].MD5) {
		t.Errorf("report does not list %s with its MD5", sample)
	}
	if !strings.Contains(rep, "the L01&#39;s logical data stream") && !strings.Contains(rep, "the L01's logical data stream") {
		t.Errorf("the report does not say what the hashes cover")
	}
	if after := testenv.FileMD5(t, corpus); after != before {
		t.Fatalf("the source changed: %s -> %s", before, after)
	}
	t.Logf("%d files match fls; %d checked against icat; %d deleted entries recovered", len(want), (n+39)/40, len(deleted))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestLogicalZipWithPreset saves a filter preset (Perl files under 64 KiB modified after a date),
// images the corpus to a zip through it, and checks the zip holds exactly the matching files, and
// that the manifest's hashes are those of the extracted files.
func TestLogicalZipWithPreset(t *testing.T) {
	unzip := testenv.Tool(t, "unzip")
	e, corpus := corpusEnv(t)
	before := testenv.FileMD5(t, corpus)
	all, _ := corpusFiles(t, corpus)
	// Pick the date so that it splits the candidates: the test then proves both sides of it.
	var cands []time.Time
	for p, f := range all {
		if strings.HasSuffix(strings.ToLower(p), ".pl") && f.Size <= 65535 {
			cands = append(cands, flsTime(t, f.Times[0]))
		}
	}
	if len(cands) < 10 {
		t.Fatalf("only %d small .pl files in the corpus", len(cands))
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Before(cands[j]) })
	cands = slices.CompactFunc(cands, time.Time.Equal)
	if len(cands) < 2 {
		t.Fatalf("the small .pl files all have one modification time")
	}
	after := cands[len(cands)/2] // inclusive bound: files modified at this very second are selected
	want := map[string]testenv.TSKFile{}
	tooBig, tooOld := 0, 0
	for p, f := range all {
		if !strings.HasSuffix(strings.ToLower(p), ".pl") {
			continue
		}
		switch {
		case f.Size > 65535:
			tooBig++
		case flsTime(t, f.Times[0]).Before(after):
			tooOld++
		default:
			want[p] = f
		}
	}
	if tooBig == 0 || tooOld == 0 || len(want) == 0 {
		t.Fatalf("the preset should select some and reject some: %d selected, %d too big, %d too old", len(want), tooBig, tooOld)
	}
	preset := `{"name": "perl small recent", "extensions": ["PL"], "maxSize": 65535, "modifiedAfter": "` + after.Format(time.RFC3339) + `"}`
	if code, body := e.postJSON("/api/settings", preset); code != http.StatusCreated {
		t.Fatalf("POST /api/settings: %d %s", code, body)
	}
	code, body := e.get("/api/settings")
	if code != 200 || !strings.Contains(body, `"perl small recent"`) {
		t.Fatalf("GET /api/settings: %d %s", code, body)
	}
	key := e.mustStart("/api/start-logical?source=SAS1&targetType=zip&settings=perl+small+recent&targetFolder=" + url.QueryEscape(e.targets+"/zip"))
	m := e.wait(key)
	if m["state"] != "completed" {
		t.Fatalf("task: %v", m)
	}
	zipPath := filepath.Join(e.targets, "zip", "Evidence DiskCORPUS1_0.zip")
	if out, err := exec.Command(unzip, "-tq", zipPath).CombinedOutput(); err != nil {
		t.Fatalf("unzip -t: %v: %s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command(unzip, "-q", zipPath, "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v: %s", err, out)
	}
	got := readTree(t, dir)
	manifest := readManifest(t, filepath.Join(dir, "manifest.csv"))
	delete(got, "manifest.csv")
	delete(got, "manifest.json")
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("missing from the zip: %s", p)
			continue
		}
		if g.size != w.Size {
			t.Errorf("%s: %d bytes, fls says %d", p, g.size, w.Size)
		}
		if manifest[p]["md5"] != g.md5 {
			t.Errorf("%s: manifest MD5 %s, extracted file %s", p, manifest[p]["md5"], g.md5)
		}
		data, _ := os.ReadFile(filepath.Join(dir, p))
		if s := sha1.Sum(data); manifest[p]["sha1"] != hex.EncodeToString(s[:]) {
			t.Errorf("%s: manifest SHA1 differs from the extracted file's", p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("the preset should not have selected %s", p)
		}
	}
	if after := testenv.FileMD5(t, corpus); after != before {
		t.Fatalf("the source changed")
	}
	t.Logf("preset selected %d files (rejected %d too big, %d too old)", len(want), tooBig, tooOld)
}

// TestLogicalZipAllFiles images the whole corpus (under -race the files raceSubset keeps) to a zip:
// it holds exactly the files fls lists, and the manifest's MD5 and SHA1 of every file equal those
// of the extracted file.
func TestLogicalZipAllFiles(t *testing.T) {
	unzip := testenv.Tool(t, "unzip")
	e, corpus := corpusEnv(t)
	subset, keep := raceSubset(t, e)
	key := e.mustStart("/api/start-logical?source=SAS1&targetType=zip&targetFolder=" + url.QueryEscape(e.targets+"/all") + subset)
	if m := e.wait(key); m["state"] != "completed" || m["message"] != "completed" || m["verified"] != true {
		t.Fatalf("task: %v", m)
	}
	dir := t.TempDir()
	if out, err := exec.Command(unzip, "-q", filepath.Join(e.targets, "all", "Evidence DiskCORPUS1_0.zip"), "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v: %s", err, out)
	}
	manifest := readManifest(t, filepath.Join(dir, "manifest.csv"))
	want, _ := corpusFiles(t, corpus)
	maps.DeleteFunc(want, func(_ string, f testenv.TSKFile) bool { return !keep(f) })
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "manifest.csv" || rel == "manifest.json" {
			return nil
		}
		w, ok := want[rel]
		if !ok {
			if manifest[rel]["deleted"] == "true" {
				return nil // recovered deleted entries are extras fls lists apart
			}
			t.Errorf("not listed by fls: %s", rel)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m, s := md5.Sum(data), sha1.Sum(data)
		if int64(len(data)) != w.Size || manifest[rel]["md5"] != hex.EncodeToString(m[:]) || manifest[rel]["sha1"] != hex.EncodeToString(s[:]) {
			t.Errorf("%s: %d bytes (fls %d), manifest %s/%s", rel, len(data), w.Size, manifest[rel]["md5"], manifest[rel]["sha1"])
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("the zip holds %d of the %d files fls lists", n, len(want))
	}
	t.Logf("%d files, each equal to fls's size and to the manifest's MD5 and SHA1", n)
}

func flsTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04:05 (MST)", s)
	if err != nil {
		t.Fatalf("fls time %q: %v", s, err)
	}
	return v
}

func readManifest(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) < 1 {
		t.Fatalf("manifest.csv: %v", err)
	}
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out[m["path"]] = m
	}
	return out
}

// TestLogicalBadInput: every bad parameter and preset gets a clear 400 and starts nothing.
func TestLogicalBadInput(t *testing.T) {
	e := newEnv(t)
	tf := url.QueryEscape(e.targets + "/x")
	for _, c := range []struct{ path, want string }{
		{"/api/start-logical?source=SATA1&targetFolder=" + tf + "&targetType=vhd", "accepted values for logical imaging are L01, zip"},
		{"/api/start-logical?source=SATA1&targetFolder=" + tf + "&hash=crc32", "accepted values are md5, sha1, md5+sha1, none"},
		{"/api/start-logical?source=SATA1&targetFolder=" + tf + "&settings=nope", `no such filter preset`},
		{"/api/start-logical?source=SATA1&targetFolder=" + tf + "&compression=maybe", "compression"},
		{"/api/start-logical?targetFolder=" + tf, "source is required"},
		{"/api/start-logical?source=SATA1&targetFolder=relative/dir", "targetFolder"},
	} {
		code, body := e.get(c.path)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s (want 400 %q)", c.path, code, body, c.want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{`{"name": "x", "size": 3}`, "unknown field"},
		{`{"name": "", "extensions": ["pl"]}`, "name"},
		{`{"name": "x", "minSize": 10, "maxSize": 5}`, "minSize"},
		{`{"name": "x", "paths": ["[a"]}`, "paths[0]"},
		{`{"name": "x", "modifiedAfter": "yesterday"}`, "modifiedAfter"},
		{`not json`, "invalid"},
	} {
		code, body := e.postJSON("/api/settings", c.body)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("POST /api/settings %s: %d %s (want 400 %q)", c.body, code, body, c.want)
		}
	}
	if code, body := e.get("/api/settings"); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("no preset should have been stored: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(e.targets, "x")); err == nil {
		t.Errorf("a rejected request created the target folder")
	}
}

// TestLogicalUnreadableDrive: a drive without a partition table or file system, and one whose
// only partition holds no file system we read, fail the task with a clear message; nothing crashes.
func TestLogicalUnreadableDrive(t *testing.T) {
	// An MBR with one empty Linux partition.
	empty := filepath.Join(t.TempDir(), "empty-part.img")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(empty, 8<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "sfdisk"), "-q", empty)
	cmd.Stdin = strings.NewReader("label: dos\nstart=2048, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
	e := newEnv(t, board.PortDesc{Name: "SATA5", Mode: "source", Drive: &board.DriveDesc{Path: empty, Model: "Blank", Serial: "B0"}})
	key := e.mustStart("/api/start-logical?source=SATA1&targetFolder=" + url.QueryEscape(e.targets+"/r"))
	m := e.wait(key)
	if m["state"] != "failed" || !strings.Contains(m["message"].(string), "no readable partition table or file system") {
		t.Fatalf("task: %v", m)
	}
	key = e.mustStart("/api/start-logical?source=SATA5&targetFolder=" + url.QueryEscape(e.targets+"/b"))
	m = e.wait(key)
	if m["state"] != "failed" || !strings.Contains(m["message"].(string), "no file system on the drive could be read: p1-unknown") {
		t.Fatalf("task: %v", m)
	}
	if code, _ := e.get("/api/source-drives"); code != 200 {
		t.Fatalf("the daemon stopped answering")
	}
}

// mustStart calls a start-* endpoint and returns the task key.
func (e *env) mustStart(path string) string {
	e.t.Helper()
	code, key := e.get(path)
	if code != 200 {
		e.t.Fatalf("GET %s: %d %s", path, code, key)
	}
	return key
}

func (e *env) postJSON(path, body string) (int, string) {
	e.t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// reportArchive fetches a task's report zip (/api/report) and returns its member names in archive
// order and their contents.
func (e *env) reportArchive(key string) (names []string, files map[string]string) {
	e.t.Helper()
	code, body := e.get("/api/report?taskKey=" + url.QueryEscape(key))
	if code != 200 {
		e.t.Fatalf("report: %d %s", code, body)
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		e.t.Fatalf("report zip: %v", err)
	}
	files = map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			e.t.Fatalf("%s in the report zip: %v", f.Name, err)
		}
		names = append(names, f.Name)
		files[f.Name] = string(b)
	}
	return names, files
}

// reportMember returns one file of a task's report zip (/api/report).
func (e *env) reportMember(key, name string) string {
	e.t.Helper()
	_, files := e.reportArchive(key)
	f, ok := files[name]
	if !ok {
		e.t.Fatalf("report zip has no %s", name)
	}
	return f
}

// TestLogicalPauseResume pauses an L01 logical task mid-copy (stop-task), checks the partial L01
// is a valid container meanwhile, resumes it (resume-task), and checks the finished L01 holds
// every file (under -race those raceSubset keeps) exactly once with correct hashes.
func TestLogicalPauseResume(t *testing.T) {
	ewfverify := testenv.Tool(t, "ewfverify")
	corpus := testenv.Corpus(t)
	readMBps := 20.0 // 40% of the ~175 MB of files in about 3.5 s
	if testenv.Race {
		readMBps = 6 // 40% of the ~55 MB of raceSubset's files in about as long
	}
	e := newEnv(t, board.PortDesc{Name: "SAS2", Mode: "source",
		Drive: &board.DriveDesc{Path: corpus, Model: "Slow Evidence", Serial: "SLOWC1", ReadMBps: readMBps}})
	subset, keep := raceSubset(t, e)
	before := testenv.FileMD5(t, corpus)
	key := e.mustStart("/api/start-logical?source=SAS2&targetFolder=" + url.QueryEscape(e.targets+"/p") + subset)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
		if p, _ := strconv.Atoi(fmt.Sprint(m["progress"])); m["taskStep"] == "copying" && p >= 40 {
			break // about 3.5 s of copying: past a periodic checkpoint
		}
		if m["state"] != "in-progress" || time.Now().After(deadline) {
			t.Fatalf("task before pause: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := e.get("/api/stop-task?taskKey=" + url.QueryEscape(key)); code != 200 || !strings.Contains(body, "paused") {
		t.Fatalf("stop-task: %d %s\n%s", code, body, e.reportMember(key, "Log.txt"))
	}
	m := e.json("/api/check-task?taskKey=" + url.QueryEscape(key))
	if m["state"] != "paused" {
		t.Fatalf("after stop-task: %v", m)
	}
	l01 := filepath.Join(e.targets, "p", "Slow EvidenceSLOWC1_0.L01")
	if out, err := exec.Command(ewfverify, "-q", l01).CombinedOutput(); err != nil {
		t.Fatalf("the paused L01 is not a valid container: %v: %s", err, out)
	}
	partial, err := ewf.OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	nPartial := len(partial.Entries())
	partial.Close()
	if code, body := e.get("/api/resume-task?taskKey=" + url.QueryEscape(key)); code != 200 {
		t.Fatalf("resume-task: %d %s", code, body)
	}
	m = e.wait(key)
	if m["state"] != "completed" || m["message"] != "completed" || m["verified"] != true {
		t.Fatalf("after resume: %v", m)
	}
	want, _ := corpusFiles(t, corpus)
	maps.DeleteFunc(want, func(_ string, f testenv.TSKFile) bool { return !keep(f) })
	lr, err := ewf.OpenLogical(l01)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	if err := lr.Verify(); err != nil {
		t.Fatalf("resumed L01: %v", err)
	}
	got := map[string]int64{}
	for _, f := range lr.Entries() {
		if f.Dir {
			continue
		}
		if _, dup := got[f.Path]; dup {
			t.Fatalf("%s stored twice", f.Path)
		}
		got[f.Path] = f.Size
	}
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w.Size {
			t.Errorf("%s: in L01 %v (%d bytes), fls %d bytes", p, ok, g, w.Size)
		}
	}
	if len(got) != len(want) {
		t.Errorf("L01 holds %d files, fls lists %d", len(got), len(want))
	}
	if out, err := exec.Command(ewfverify, "-q", l01).CombinedOutput(); err != nil {
		t.Fatalf("ewfverify after resume: %v: %s", err, out)
	}
	if testenv.FileMD5(t, corpus) != before {
		t.Fatal("the source changed")
	}
	t.Logf("paused with %d of %d entries; resumed to all %d files", nPartial, len(lr.Entries()), len(got))
}

// TestLogicalBadSector: unreadable sectors in a folder (read while walking, through the scan's
// cache of 32 KiB blocks, imaging/blockcache) and in a file (read while copying) are listed with
// the drive's error; the folder and files beside them, in the same 32 KiB blocks, come out whole
// with their right hashes; the source file is unchanged.
func TestLogicalBadSector(t *testing.T) {
	mkfs, mcopy := testenv.Tool(t, "mkfs.vfat"), testenv.Tool(t, "mcopy")
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	// 512-byte clusters: the folders and files lie side by side, several in one 32 KiB block.
	if out, err := exec.Command(mkfs, "-C", "-s", "1", "-n", "BADSECT", img, "8192").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v %s", err, out)
	}
	content := func(tag string, n int) []byte {
		b := bytes.Repeat([]byte(tag), n/len(tag)+1)
		return b[:n]
	}
	files := []struct {
		name string
		data []byte
	}{
		{"DIR1/A1.TXT", content("in the readable folder ", 900)},
		{"DIR2/B1.TXT", content("in the unreadable folder ", 900)},
		{"BEFORE.BIN", content("before-the-bad-file ", 3000)},
		{"BAD.BIN", content("the-file-with-a-bad-sector ", 6000)},
		{"AFTER.TXT", content("after ", 700)},
	}
	src := filepath.Join(dir, "src")
	for _, f := range files {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"DIR1", "DIR2", "BEFORE.BIN", "BAD.BIN", "AFTER.TXT"} {
		if out, err := exec.Command(mcopy, "-s", "-i", img, filepath.Join(src, name), "::/").CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v %s", name, err, out)
		}
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	block := func(off int) int { return off / (32 << 10) }
	// The folders' clusters hold their entries' 8.3 names.
	dir1, dir2 := bytes.Index(raw, []byte("A1      TXT")), bytes.Index(raw, []byte("B1      TXT"))
	at := bytes.Index(raw, files[3].data[:512])
	before, after := bytes.Index(raw, files[2].data[:512]), bytes.Index(raw, files[4].data)
	if dir1 < 0 || dir2 < 0 || at < 0 || before < 0 || after < 0 || at%512 != 0 {
		t.Fatalf("folders or files not found in the image (%d %d %d %d %d)", dir1, dir2, before, at, after)
	}
	badDir, badFile := int64(dir2/512), int64(at/512+5) // DIR2's cluster, BAD.BIN's sixth sector
	if block(dir1) != block(dir2) || (block(before) != block(at+5*512) && block(after) != block(at+5*512)) {
		t.Fatalf("the bad sectors have no readable neighbour in their 32 KiB blocks (%d %d %d %d %d): the test would not cover the cache", dir1, dir2, before, at, after)
	}
	sum := md5.Sum(raw)
	e := newEnv(t, board.PortDesc{Name: "SATA5", Mode: "source", Drive: &board.DriveDesc{Path: img, Model: "Bad", Serial: "S5", BadSectors: []int64{badDir, badFile}}})
	key := e.mustStart("/api/start-logical?source=SATA5&targetFolder=" + url.QueryEscape(e.targets+"/l"))
	m := e.wait(key)
	if m["state"] != "completed" || !strings.Contains(fmt.Sprint(m["details"]), "2 errors") {
		t.Fatalf("task: %v", m)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(e.reportMember(key, "Report.json")), &r); err != nil || r.Logical == nil {
		t.Fatalf("Report.json: %v (logical section %v)", err, r.Logical != nil)
	}
	var dirProblem bool
	for _, p := range r.Logical.Problems {
		dirProblem = dirProblem || strings.Contains(p, "DIR2") && strings.Contains(p, fmt.Sprintf("unreadable sectors at LBA %d", badDir))
	}
	if !dirProblem {
		t.Errorf("problems %q: want DIR2's unreadable sector %d", r.Logical.Problems, badDir)
	}
	got := map[string]int{}
	for _, f := range r.Logical.Files {
		for _, w := range files {
			if !strings.HasSuffix(f.Path, "/"+w.name) {
				continue
			}
			got[w.name]++
			want := md5.Sum(w.data)
			switch {
			case w.name == "BAD.BIN":
				if !strings.Contains(f.Err, fmt.Sprintf("unreadable sectors at LBA %d", badFile)) {
					t.Errorf("%s: error %q, want the drive's unreadable sector %d", f.Path, f.Err, badFile)
				}
			case f.Err != "" || f.MD5 != hex.EncodeToString(want[:]) || f.Size != int64(len(w.data)):
				t.Errorf("%s: %+v, want MD5 %x and no error", f.Path, f, want)
			}
		}
	}
	if len(got) != len(files)-1 || got["DIR2/B1.TXT"] != 0 {
		t.Fatalf("report files %+v: want each file once but the one in the unreadable folder", r.Logical.Files)
	}
	if after, err := os.ReadFile(img); err != nil || md5.Sum(after) != sum {
		t.Fatalf("the source image changed (%v)", err)
	}
}
