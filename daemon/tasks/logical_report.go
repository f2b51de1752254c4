package tasks

import (
	"bytes"
	"fmt"
	"html/template"

	"github.com/evidenced/evidenced/imaging/logical"
)

var logicalTmpl = template.Must(template.New("logical").Funcs(reportFuncs).Parse(`<h2>Volumes</h2>
{{if .Volumes}}<table><tr><th>Folder</th><th>Table</th><th>Type</th><th>File system</th><th>Label</th><th>Offset</th><th>Size</th><th>Result</th></tr>
{{range .Volumes}}<tr><td>{{.Name}}</td><td>{{.V.Scheme}}</td><td>{{.V.PartType}}</td><td>{{.V.FS}}</td><td>{{.V.Label}}</td><td>{{.V.Offset}}</td><td>{{.V.Size}}</td><td>{{.State}}</td></tr>
{{end}}</table>{{else}}<p>No partition table or file system found.</p>{{end}}
<h2>Errors</h2>
{{if .Problems}}<ul>{{range .Problems}}<li class="bad">{{.}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}
<h2>Files ({{len .Files}})</h2>
<table><tr><th>Path</th><th>Size</th><th>Modified (UTC)</th><th>Deleted</th><th>MD5</th><th>SHA1</th><th>Error</th></tr>
{{range .Files}}<tr{{if .Err}} class="bad"{{end}}><td>{{.Path}}{{if .Dir}}/{{end}}</td><td>{{if not .Dir}}{{.Size}}{{end}}</td><td>{{whenUTC .Modified}}</td><td>{{if .Deleted}}deleted{{end}}</td><td><code>{{.MD5}}</code></td><td><code>{{.SHA1}}</code></td><td>{{.Err}}</td></tr>
{{end}}</table>
`))

// logicalReportHTML is the logical task's part of Report.html: volumes, errors, and every entry
// with its hashes.
func logicalReportHTML(vols []logical.Volume, state map[int]string, files []logicalResult, problems []string) string {
	type vol struct {
		Name, State string
		V           logical.Volume
	}
	vs := make([]vol, len(vols))
	for i, v := range vols {
		vs[i] = vol{volumeName(v), state[i], v}
		if vs[i].State == "" {
			vs[i].State = "not reached"
		}
	}
	var b bytes.Buffer
	if err := logicalTmpl.Execute(&b, map[string]any{"Volumes": vs, "Problems": problems, "Files": files}); err != nil {
		return fmt.Sprintf("<p>report: %s</p>", template.HTMLEscapeString(err.Error()))
	}
	return b.String()
}
