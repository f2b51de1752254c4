package report

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"strconv"
	"strings"
)

// FilesPerPage is how many entries of a logical task's file list one collapsible page of the
// HTML holds; the complete list is in Report.json and Files.csv.
const FilesPerPage = 500

var htmlFuncs = template.FuncMap{
	"bytes":    Bytes,
	"when":     When,
	"dur":      Duration,
	"speed":    Speed,
	"group":    group,
	"ms":       func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
	"mbps":     func(v float64) string { return fmt.Sprintf("%.1f MB/s", v) },
	"whenOK":   func(s string) bool { return s != "" },
	"pages":    filePages,
	"svg":      func(s Surface) template.HTML { return template.HTML(surfaceSVG(s)) }, // built from numbers only
	"bad":      func(v string) bool { return v != AttrOK && v != Match },
	"upper":    strings.ToUpper,
	"fileRows": fileRows,
	"noCase":   func(c Case) bool { return c == Case{} },
	"ibinary":  func(n int) string { return binary(int64(n)) },
	// raw passes a legacy section through: it was rendered by this daemon's own template.
	"raw": func(s string) template.HTML { return template.HTML(s) },
}

// filePage is one collapsible page of the file list.
type filePage struct {
	First, Last int // 1-based, for the label
	Files       []File
}

func filePages(fs []File) []filePage {
	var out []filePage
	for i := 0; i < len(fs); i += FilesPerPage {
		j := min(i+FilesPerPage, len(fs))
		out = append(out, filePage{i + 1, j, fs[i:j]})
	}
	return out
}

// WriteHTML writes the report as one self-contained HTML page (no external resources) that
// prints on A4 and Letter alike: margins from @page, long values wrap, each section starts on a
// new page when printed.
func WriteHTML(w io.Writer, r *Report) error {
	if err := htmlTmpl.Execute(w, r); err != nil {
		return fmt.Errorf("render Report.html: %w", err)
	}
	return nil
}

var htmlTmpl = template.Must(template.New("report").Funcs(htmlFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — {{.Source.Model}} {{.Source.Serial}}</title>
<style>
@page { margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10.5pt; color: #111; margin: 1.5em auto; max-width: 60em; padding: 0 1em; }
h1 { font-size: 18pt; margin: 0 0 .2em; }
h2 { font-size: 13pt; border-bottom: 2px solid #333; padding-bottom: 2px; margin: 1.4em 0 .5em; }
h3 { font-size: 11pt; margin: 1em 0 .3em; }
.sub { color: #444; margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; }
th, td { border: 1px solid #999; padding: 3px 6px; text-align: left; vertical-align: top; overflow-wrap: anywhere; word-break: break-word; }
th { background: #eee; font-weight: 600; }
table.kv th { width: 28%; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
code, pre, .hash { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-all; background: #f6f6f6; border: 1px solid #ddd; padding: .5em; margin: .3em 0; }
.bad { color: #a00; font-weight: 600; }
.ok { color: #060; font-weight: 600; }
.verdict { font-size: 12pt; padding: .4em .6em; border: 2px solid; margin: .5em 0; }
.verdict.ok { border-color: #060; background: #efe; }
.verdict.bad { border-color: #a00; background: #fee; }
.verdict.none { border-color: #886; background: #ffd; font-weight: 600; }
.num { text-align: right; white-space: nowrap; }
details { margin: .2em 0; } summary { cursor: pointer; font-weight: 600; }
svg { max-width: 100%; height: auto; }
section { margin-bottom: 1em; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; }
  section.page { break-before: page; page-break-before: always; }
  /* a short section moves whole to the next page rather than split; a heading stays with what follows */
  section.keep { break-inside: avoid-page; page-break-inside: avoid; }
  h2, h3 { break-after: avoid-page; page-break-after: avoid; }
  details > summary { list-style: none; }
  a { color: inherit; text-decoration: none; }
}
</style></head><body>
<header>
<h1>{{.Title}}</h1>
<p class="sub">{{.Source.Model}} · serial {{.Source.Serial}} · task <code>{{.Task.Key}}</code><br>
Appliance {{.Appliance.ID}} · {{.Appliance.Software}} · report generated {{when .Generated}} · times in {{.TimeZone}} with UTC beside</p>
</header>

<section id="case" class="keep"><h2>Case</h2>
{{if noCase .Case}}<p>No case was recorded for this task.</p>{{else}}
<table class="kv">
<tr><th>Case number</th><td>{{.Case.Number}}</td></tr>
<tr><th>Evidence number</th><td>{{.Case.Evidence}}</td></tr>
<tr><th>Examiner</th><td>{{.Case.Examiner}}</td></tr>
<tr><th>Description</th><td>{{.Case.Description}}</td></tr>
<tr><th>Notes</th><td>{{.Case.Notes}}</td></tr>
<tr><th>Organisation</th><td>{{.Case.Organisation}}</td></tr>
<tr><th>Location</th><td>{{.Case.Location}}</td></tr>
{{with .Task.Owner}}<tr><th>Started by</th><td>{{.}}</td></tr>{{end}}
</table>{{end}}</section>

<section id="source" class="keep"><h2>Source drive</h2>
<table class="kv">
<tr><th>Port</th><td>{{.Source.Port}}</td></tr>
<tr><th>Bus</th><td>{{.Source.Bus}}</td></tr>
<tr><th>Model</th><td>{{.Source.Model}}</td></tr>
<tr><th>Serial number</th><td>{{.Source.Serial}}</td></tr>
<tr><th>Firmware</th><td>{{.Source.Firmware}}</td></tr>
<tr><th>Size</th><td>{{bytes .Source.Size}}</td></tr>
<tr><th>Sector size</th><td>{{if .Source.SectorSize}}{{.Source.SectorSize}} bytes (logical){{else}}not recorded{{end}}</td></tr>
<tr><th>Host Protected Area (HPA)</th><td>{{.Source.HPA}}</td></tr>
<tr><th>Device Configuration Overlay (DCO)</th><td>{{.Source.DCO}}</td></tr>
<tr><th>Write block</th><td>{{.Source.WriteBlock}}</td></tr>
{{with .Source.SMART}}<tr><th>SMART (diagnose {{when .At}})</th><td>{{if not .Supported}}not offered by this drive or bus{{else}}overall {{if .Passed}}<span class="ok">PASSED</span>{{else}}<span class="bad">FAILED</span>{{end}}; {{.TemperatureC}} °C; {{.PowerOnHours}} power-on hours; {{.Reallocated}} reallocated, {{.PendingSectors}} pending sectors{{end}}<br><code>{{.Task}}</code></td></tr>{{end}}
</table></section>

{{with .Acquisition}}<section id="acquisition" class="keep"><h2>Acquisition</h2>
<p><b>{{.Summary}}</b></p>
<table class="kv">
{{range .Settings}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}<tr><th>Image</th><td>{{.Target}}</td></tr>
<tr><th>Started</th><td>{{when .Started}}</td></tr>
{{if not .VerifyStarted.IsZero}}<tr><th>Verification started</th><td>{{when .VerifyStarted}}</td></tr>{{end}}
<tr><th>Ended</th><td>{{when .Ended}}</td></tr>
<tr><th>Duration</th><td>{{dur .Seconds}}{{if ne .Seconds .ImagingSeconds}} (reading the source: {{dur .ImagingSeconds}}){{end}}{{if .PausedSeconds}}; paused {{dur .PausedSeconds}}, not counted{{end}}</td></tr>
<tr><th>Average speed</th><td>{{speed .BytesPerSecond}}</td></tr>
</table>
<table class="kv"><tr><th>Appliance</th><td>{{$.Appliance.ID}}</td></tr><tr><th>Software</th><td>{{$.Appliance.Software}}</td></tr></table>
</section>{{end}}

<section id="result" class="keep"><h2>Result</h2>
<table class="kv">
<tr><th>State</th><td>{{.Result.State}}</td></tr>
<tr><th>Message</th><td>{{.Result.Message}}</td></tr>
{{with .Result.Details}}<tr><th>Details</th><td>{{.}}</td></tr>{{end}}
{{with .Result.Incomplete}}<tr><th>Image</th><td class="bad">{{.}}</td></tr>{{end}}
<tr><th>Bytes processed</th><td>{{bytes .Result.BytesDone}} of {{bytes .Result.BytesTotal}}</td></tr>
{{if ne .Kind "logical"}}<tr><th>Retries</th><td>each failing sector read {{.Result.Retries}} more time(s) before it was given up</td></tr>{{end}}
<tr><th>Unreadable sectors</th><td>{{if .Result.UnreadableSectors}}<span class="bad">{{group .Result.UnreadableSectors}} sectors in {{len .Result.Unreadable}} range(s), zero-filled</span>{{else}}none{{end}}</td></tr>
<tr><th>Freezing-drive recovery</th><td>{{if .Result.Recovery}}{{len .Result.Recovery}} step(s), listed below{{else}}none needed{{end}}</td></tr>
</table>
{{if .Result.Unreadable}}<h3>Unreadable sector ranges</h3>
<table><thead><tr><th>First LBA</th><th>Count</th><th>Bytes</th></tr></thead>
{{range .Result.Unreadable}}<tr class="bad"><td>{{.First}}</td><td>{{.Count}}</td><td>{{group .Bytes}}</td></tr>
{{end}}</table>{{end}}
{{if .Result.Recovery}}<h3>Freezing-drive recovery</h3><pre>{{range .Result.Recovery}}{{.}}
{{end}}</pre>{{end}}
</section>

{{with .Hashes}}<section id="hashes" class="keep"><h2>Hashes</h2>
<p>{{.Covers}}</p>
<table><thead><tr><th>Algorithm</th><th>Acquisition hash</th><th>Verification hash</th><th>Result</th></tr></thead>
{{range .Rows}}<tr><th>{{.Algorithm}}</th><td class="hash">{{.Acquisition}}</td><td class="hash">{{.Verification}}</td><td{{if bad .Verdict}} class="bad"{{else}} class="ok"{{end}}>{{.Verdict}}</td></tr>
{{end}}</table>
<p class="verdict {{if eq .Verdict "MATCH"}}ok{{else if eq .Verdict "MISMATCH"}}bad{{else}}none{{end}}">{{.Verdict}}: {{.Verification}}</p>
</section>{{end}}

{{if .ImageFiles}}<section id="files" class="keep"><h2>Image files</h2>
<table><thead><tr><th>File</th><th>Size</th><th>Own hashes</th></tr></thead>
{{range .ImageFiles}}<tr><td>{{.Name}}</td><td class="num">{{bytes .Size}}</td><td class="hash">{{range $k, $v := .Hashes}}{{$k}} {{$v}}<br>{{end}}</td></tr>
{{end}}</table></section>{{end}}

{{with .Diagnose}}<section id="smart" class="page"><h2>SMART</h2>
{{if .SMART.Supported}}<table class="kv">
<tr><th>Overall health</th><td>{{if .SMART.Passed}}<span class="ok">PASSED</span>{{else}}<span class="bad">FAILED</span>{{end}}</td></tr>
<tr><th>Temperature</th><td>{{.SMART.TemperatureC}} °C</td></tr>
<tr><th>Power-on hours</th><td>{{.SMART.PowerOnHours}}</td></tr>
<tr><th>Reallocated sectors</th><td>{{.SMART.Reallocated}}</td></tr>
<tr><th>Pending sectors</th><td>{{.SMART.PendingSectors}}</td></tr></table>
{{if .SMART.Attributes}}<table><thead><tr><th>ID</th><th>Attribute</th><th>Type</th><th>Value</th><th>Worst</th><th>Threshold</th><th>Raw</th><th>Verdict</th></tr></thead>
{{range .SMART.Attributes}}<tr{{if bad .Verdict}} class="bad"{{end}}><td>{{.ID}}</td><td>{{.Name}}</td><td>{{if .PreFail}}pre-fail{{else}}old age{{end}}</td><td class="num">{{.Value}}</td><td class="num">{{.Worst}}</td><td class="num">{{.Threshold}}</td><td class="num">{{.Raw}}</td><td>{{.Verdict}}</td></tr>
{{end}}</table>{{end}}
{{if .SMART.Other}}<table>{{range .SMART.Other}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}</table>{{end}}
{{else}}<p>Not offered by this drive or bus{{with .SMART.Error}}: {{.}}{{end}}.</p>{{end}}
</section>
<section id="surface" class="page"><h2>Surface read test</h2>
<table class="kv">
<tr><th>Bytes read</th><td>{{bytes .Surface.Bytes}}</td></tr>
<tr><th>Time</th><td>{{dur .Surface.Seconds}}</td></tr>
<tr><th>Average speed</th><td>{{mbps .Surface.MBps}}</td></tr>
<tr><th>Slowest block read (blocks of {{ibinary .Surface.BlockSize}})</th><td>{{ms .Surface.SlowestMs}}</td></tr>
<tr><th>Unreadable sectors</th><td>{{if .Surface.UnreadableSectors}}<span class="bad">{{group .Surface.UnreadableSectors}}</span>{{else}}none{{end}}</td></tr>
</table>
<table><thead><tr>{{range .Surface.Histogram}}<th>reads {{.Label}}</th>{{end}}</tr></thead><tr>{{range .Surface.Histogram}}<td class="num">{{.Reads}}</td>{{end}}</tr></table>
<h3>Surface map</h3>
{{svg .Surface}}
</section>{{end}}

{{with .Logical}}<section id="volumes" class="page"><h2>Volumes</h2>
{{if .Volumes}}<table><thead><tr><th>Folder</th><th>Table</th><th>Type</th><th>File system</th><th>Label</th><th>Offset</th><th>Size</th><th>Files</th><th>Folders</th><th>Bytes</th><th>Deleted</th><th>Errors</th><th>Result</th></tr></thead>
{{range .Volumes}}<tr><td>{{.Name}}</td><td>{{.Scheme}}</td><td>{{.PartType}}</td><td>{{.FS}}</td><td>{{.Label}}</td><td class="num">{{group .Offset}}</td><td class="num">{{group .Size}}</td><td class="num">{{.Files}}</td><td class="num">{{.Folders}}</td><td class="num">{{group .Bytes}}</td><td class="num">{{.Deleted}}</td><td class="num{{if .Errors}} bad{{end}}">{{.Errors}}</td><td>{{.State}}</td></tr>
{{end}}</table>{{else}}<p>No partition table or file system found.</p>{{end}}
<h3>Errors</h3>
{{if .Problems}}<ul>{{range .Problems}}<li class="bad">{{.}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}
</section>
<section id="filelist" class="page"><h2>Files ({{len .Files}})</h2>
<p>The complete list, with every hash, is also in Files.csv and Report.json.</p>
{{range $i, $p := pages .Files}}<details{{if eq $i 0}} open{{end}}><summary>Entries {{$p.First}}–{{$p.Last}}</summary>
<table><thead><tr><th>Path</th><th>Size</th><th>Modified (UTC)</th><th>Deleted</th><th>MD5</th><th>SHA1</th><th>Error</th></tr></thead>
{{fileRows $p.Files}}</table></details>
{{end}}</section>{{end}}

{{with .LegacyHTML}}<section id="legacy">{{raw .}}</section>{{end}}

<section id="audit" class="page"><h2>Audit trail</h2>
{{if .Audit}}<pre>{{range .Audit}}{{.}}
{{end}}</pre>{{else}}<p>No audited actions.</p>{{end}}
<h2>Log</h2><pre>{{range .Log}}{{.}}
{{end}}</pre>
</section>
</body></html>
`))

// fileRows writes the rows of a page of the file list. A drive can hold millions of files: the
// rows are escaped and joined directly (html/template's per-value escaping took most of a
// report's rendering time); every value is escaped with html.EscapeString.
func fileRows(fs []File) template.HTML {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("<tr")
		if f.Err != "" {
			b.WriteString(` class="bad"`)
		}
		b.WriteString("><td>")
		b.WriteString(html.EscapeString(f.Path))
		size := ""
		if f.Dir {
			b.WriteString("/")
		} else {
			size = strconv.FormatInt(f.Size, 10)
		}
		b.WriteString(`</td><td class="num">` + size + "</td><td>")
		if !f.Modified.IsZero() {
			b.WriteString(f.Modified.UTC().Format("2006-01-02 15:04:05"))
		}
		b.WriteString("</td><td>")
		if f.Deleted {
			b.WriteString("deleted")
		}
		b.WriteString(`</td><td class="hash">` + html.EscapeString(f.MD5) + `</td><td class="hash">` + html.EscapeString(f.SHA1) + "</td><td>")
		b.WriteString(html.EscapeString(f.Err))
		b.WriteString("</td></tr>\n")
	}
	return template.HTML(b.String()) // escaped above
}
