package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/imaging/options"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "0 bytes",
		512:           "512 bytes",
		4 << 20:       "4,194,304 bytes (4.2 MB, 4.0 MiB)",
		500107862016:  "500,107,862,016 bytes (500.1 GB, 465.8 GiB)",
		2000398934016: "2,000,398,934,016 bytes (2.0 TB, 1.8 TiB)",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWhenNamesZoneAndUTC(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 1, 18, 32, 11, 0, time.UTC).In(berlin)
	if got, want := When(at), "2026-07-01 20:32:11 CEST (UTC+02:00) · 2026-07-01 18:32:11 UTC"; got != want {
		t.Errorf("When = %q, want %q", got, want)
	}
	if When(time.Time{}) != "—" || Duration(3725) != "1 h 02 min 05 s" || Duration(65) != "1 min 05 s" {
		t.Errorf("zero time %q, durations %q %q", When(time.Time{}), Duration(3725), Duration(65))
	}
}

// Options are named as a person would, every one of them.
func TestDescribe(t *testing.T) {
	e01 := options.Default(options.E01)
	e01.E01.SegmentGB = 2
	aff4 := options.Default(options.AFF4)
	aff4.Target = options.Target{Folder: "//srv/images", Login: "ann", Domain: "LAB", MountOptions: "vers=3.0"}
	raw := options.Default(options.Raw)
	raw.Verify, raw.Retries = false, 5
	l01 := options.Default(options.L01)
	l01.L01.Compress = false
	for _, c := range []struct {
		o        options.Task
		summary  string
		settings map[string]string
	}{
		{e01, "E01 (EWF, EnCase 6), deflate fast, segments of 2 GiB", map[string]string{"Compression": "deflate fast", "Segments": "segments of 2 GiB", "Hashes": "MD5, SHA1"}},
		{aff4, "AFF4, lz4 compression, one container", map[string]string{"Share login": `LAB\ann`, "Mount options": "vers=3.0", "Target folder": "//srv/images"}},
		{raw, "raw (dd), uncompressed, one file", map[string]string{"Verification": "off", "Retries": "5 re-reads of a failing sector before it is zero-filled"}},
		{l01, "L01 (EWF logical), no compression, one file", map[string]string{"Compression": "no compression"}},
	} {
		summary, set := Describe(c.o)
		got := map[string]string{}
		for _, s := range set {
			got[s.Name] = s.Value
		}
		if summary != c.summary {
			t.Errorf("%s: summary %q, want %q", c.o.Format, summary, c.summary)
		}
		for k, v := range c.settings {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.o.Format, k, got[k], v)
			}
		}
	}
}

func TestAttributeVerdict(t *testing.T) {
	for _, c := range []struct {
		v, w, th int
		want     string
	}{{100, 100, 36, AttrOK}, {36, 36, 36, AttrFailingNow}, {90, 30, 36, AttrFailedPast}, {1, 1, 0, AttrOK}} {
		if got := AttributeVerdict(c.v, c.w, c.th); got != c.want {
			t.Errorf("AttributeVerdict(%d, %d, %d) = %s, want %s", c.v, c.w, c.th, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	l := &Logical{Volumes: []Volume{{Name: "p1-ntfs"}, {Name: "p2-fat32"}}, Files: []File{
		{Path: "p1-ntfs/Users", Dir: true}, {Path: "p1-ntfs/Users/a.doc", Size: 100}, {Path: "p1-ntfs/b.txt", Size: 5, Deleted: true},
		{Path: "p2-fat32/c", Size: 7, Err: "read error"},
	}}
	l.Summarize()
	want := []Volume{{Name: "p1-ntfs", Files: 2, Folders: 1, Bytes: 105, Deleted: 1}, {Name: "p2-fat32", Files: 1, Bytes: 7, Errors: 1}}
	if !reflect.DeepEqual(l.Volumes, want) {
		t.Errorf("volumes %+v, want %+v", l.Volumes, want)
	}
}

func TestExtraRoundTripAndLegacy(t *testing.T) {
	in := Extra{Diagnose: &Diagnose{SMART: Health{Supported: true, Attributes: []Attribute{{ID: 5, Threshold: 36, Verdict: AttrOK}}}}}
	s, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, legacy, err := ParseExtra(s)
	if err != nil || legacy != "" || !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip: %+v %q %v", back, legacy, err)
	}
	if _, legacy, err := ParseExtra("<h2>Files</h2>"); err != nil || legacy != "<h2>Files</h2>" {
		t.Errorf("legacy HTML: %q %v", legacy, err)
	}
	if _, _, err := ParseExtra("{broken"); err == nil {
		t.Error("a broken record section is not an error")
	}
}

// full is a report with every section filled, as hostile as a drive's names can make it.
func full(files int) *Report {
	at := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	r := &Report{Kind: KindLogical, Title: "Logical imaging report", Generated: at, TimeZone: "UTC",
		Appliance: Appliance{"EVD0001", "evidenced 1.0"}, Task: Task{Key: "logical_0_M_S_EVD0001_x"},
		Case:   Case{Number: "C-1", Examiner: "Zoë Åström", Notes: strings.Repeat("long notes without a break ", 40)},
		Source: Source{Port: "SATA1", Model: "Model <b>", Serial: "S&1", Size: 1 << 30, SectorSize: 512, HPA: "none detected", DCO: "not checked", WriteBlock: "in force"},
		Acquisition: &Acquisition{Format: "l01", Summary: "L01 (EWF logical), deflate compression, one file", Started: at, Ended: at.Add(time.Minute),
			Seconds: 60, ImagingSeconds: 50, BytesPerSecond: 2e7, Target: "/t/" + strings.Repeat("x", 300) + ".L01"},
		Result: Result{State: "completed", Unreadable: []Range{{First: 10, Count: 2, Bytes: 1024}}, UnreadableSectors: 2, Recovery: []string{"power cycle 1"}},
		Hashes: &Hashes{Covers: "the stream", Verdict: Match, Verification: "re-read", Rows: []HashRow{
			{Algorithm: "MD5", Acquisition: "d41d8cd98f00b204e9800998ecf8427e", Verification: "d41d8cd98f00b204e9800998ecf8427e", Verdict: Match}}},
		ImageFiles: []ImageFile{{Name: "x.L01", Size: 1234}},
		Logical:    &Logical{Volumes: []Volume{{Name: "p1-ntfs", FS: "ntfs"}}, Problems: []string{"p1-ntfs/x: bad"}},
		Audit:      []string{"#1 start"}, Log: []string{strings.Repeat("a-very-long-log-line-without-spaces", 20)},
	}
	for i := range files {
		r.Logical.Files = append(r.Logical.Files, File{Path: fmt.Sprintf("p1-ntfs/文件 %d ✓ \"q\",<x>.txt", i), Size: int64(i), MD5: "d41d8cd98f00b204e9800998ecf8427e"})
	}
	return r
}

// Every writer renders a report with every section, names outside Latin-1 and long unbroken
// values; the HTML escapes what the drive named and pages a long file list.
func TestWriters(t *testing.T) {
	r := full(1200)
	var h, p, j, c bytes.Buffer
	if err := WriteHTML(&h, r); err != nil {
		t.Fatal(err)
	}
	if err := WritePDF(&p, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&j, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteFilesCSV(&c, r.Logical); err != nil {
		t.Fatal(err)
	}
	html := h.String()
	if strings.Contains(html, "Model <b>") || !strings.Contains(html, "Model &lt;b&gt;") || strings.Count(html, "<details") != 3 ||
		!strings.Contains(html, "Entries 1001–1200") || !strings.Contains(html, "Zoë Åström") ||
		strings.Contains(html, "<x>.txt") || !strings.Contains(html, `p1-ntfs/文件 1199 ✓ &#34;q&#34;,&lt;x&gt;.txt</td><td class="num">1199</td>`) {
		t.Error("HTML: names not escaped, or the file list not in pages of 500")
	}
	if !bytes.HasPrefix(p.Bytes(), []byte("%PDF-")) || !bytes.Contains(p.Bytes(), []byte("%%EOF")) {
		t.Error("not a PDF")
	}
	// A long list is cut in the PDF: more files past the cut add no page.
	pages := func(files int) int {
		var b bytes.Buffer
		if err := WritePDF(&b, full(files)); err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b.Bytes(), []byte("/Type /Page\n"))
	}
	if a, b, c := pages(1200), pages(PDFMaxFiles), pages(PDFMaxFiles+2000); a >= b || b != c {
		t.Errorf("PDF pages for 1200, %d, %d files: %d, %d, %d", PDFMaxFiles, PDFMaxFiles+2000, a, b, c)
	}
	var back Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || len(back.Logical.Files) != 1200 || back.Case != r.Case {
		t.Errorf("Report.json does not read back: %v", err)
	}
	r.LegacyHTML = "<h2>Files</h2><p>old</p>"
	var lh bytes.Buffer
	if err := WriteHTML(&lh, r); err != nil || !strings.Contains(lh.String(), "<h2>Files</h2><p>old</p>") {
		t.Errorf("a legacy section is not shown as it was rendered: %v", err)
	}
	if n := strings.Count(c.String(), "\n"); n != 1201 {
		t.Errorf("Files.csv has %d lines, want 1201", n)
	}
}

// Hashes.txt: check lines for files with their own hashes, comments for the rest.
func TestHashesTxt(t *testing.T) {
	r := full(0)
	r.ImageFiles = []ImageFile{{Name: "a.raw", Size: 5, Hashes: map[string]string{"SHA1": "da39a3ee5e6b4b0d3255bfef95601890afd80709", "MD5": "d41d8cd98f00b204e9800998ecf8427e"}}}
	var b bytes.Buffer
	if err := WriteHashes(&b, r); err != nil {
		t.Fatal(err)
	}
	var checks []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if !strings.HasPrefix(l, "#") {
			checks = append(checks, l)
		}
	}
	want := []string{"MD5 (../a.raw) = d41d8cd98f00b204e9800998ecf8427e", "SHA1 (../a.raw) = da39a3ee5e6b4b0d3255bfef95601890afd80709"}
	if !reflect.DeepEqual(checks, want) || !strings.Contains(b.String(), "# acquisition MD5 d41d8cd98f00b204e9800998ecf8427e") {
		t.Errorf("Hashes.txt:\n%s", b.String())
	}
}

// Whatever a drive names its files, the PDF is drawn (no character makes the font metrics fail).
func FuzzPDFText(f *testing.F) {
	for _, s := range []string{"", "plain", "文件", "\x00\xff\xfe", "tab\there", strings.Repeat("é", 500), "≥ – — … ‘’ “”", "\n\n\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := full(0)
		r.Source.Model, r.Case.Notes, r.Log = s, s, []string{s}
		r.Logical.Files = []File{{Path: s, Err: s}}
		var b bytes.Buffer
		if err := WritePDF(&b, r); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

// BenchmarkWriters renders a logical report of 10,000 files in each form.
func BenchmarkWriters(b *testing.B) {
	r := full(10000)
	for _, w := range []struct {
		name  string
		write func(io.Writer, *Report) error
	}{{"html", WriteHTML}, {"pdf", WritePDF}, {"json", WriteJSON}} {
		b.Run(w.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				var buf bytes.Buffer
				if err := w.write(&buf, r); err != nil {
					b.Fatal(err)
				}
				n = buf.Len()
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

// marshalIndent is what WriteJSON must write: the whole report through json.MarshalIndent.
func marshalIndent(t testing.TB, r *Report) []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestWriteJSONIsMarshalIndent: Report.json written an entry at a time is byte for byte the
// whole report marshalled at once, whatever the file list holds (names that look like the list's
// own key, HTML, line separators, times, errors) and however much of the report is there.
func TestWriteJSONIsMarshalIndent(t *testing.T) {
	tricky := full(0)
	tricky.Logical.Files = []File{
		{Path: `p1/"files": null`, Err: `"files": null`},
		{Path: "p1/<script>&\u2028\u2029\x00\xff", Dir: true},
		{Path: "p1/a", Size: 5, Modified: time.Date(2020, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)), Deleted: true, MD5: "m", SHA1: "s"},
	}
	tricky.Logical.Problems = []string{`"files": null`}
	tricky.Logical.Volumes[0].Files = 3
	empty := full(0)
	empty.Logical.Files = []File{}
	image := full(0)
	image.Kind, image.Logical = KindImage, nil
	for name, r := range map[string]*Report{"1200 files": full(1200), "tricky": tricky, "nil list": full(0), "empty list": empty, "image": image, "zero": {}} {
		var b bytes.Buffer
		if err := WriteJSON(&b, r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := marshalIndent(t, r); !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: %d bytes, MarshalIndent %d; first difference at %d", name, b.Len(), len(want), firstDiff(b.Bytes(), want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func FuzzWriteJSON(f *testing.F) {
	f.Add("p1/a.txt", "", int64(3), false, "")
	f.Add(`"files": null`, `"files": null`, int64(-1), true, "\u2028<&>")
	f.Fuzz(func(t *testing.T, path, errText string, size int64, dir bool, problem string) {
		r := full(0)
		r.Logical.Problems = []string{problem}
		r.Logical.Files = []File{{Path: path, Err: errText, Size: size, Dir: dir}, {Path: problem}}
		var b bytes.Buffer
		if err := WriteJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		if want := marshalIndent(t, r); !bytes.Equal(b.Bytes(), want) {
			t.Fatalf("%d bytes, MarshalIndent %d; first difference at %d", b.Len(), len(want), firstDiff(b.Bytes(), want))
		}
	})
}
