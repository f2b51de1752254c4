package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

// Report.pdf is drawn from the model by github.com/go-pdf/fpdf, a pure Go library: it adds well
// under a megabyte to the daemon, where printing the HTML through headless Chromium would put
// hundreds of megabytes of browser on the appliance image. It uses the PDF core fonts
// (Helvetica, Courier: nothing to embed), which cover Latin-1; other characters are written as
// their nearest ASCII ("–" as "-") or "?".
//
// The page is A4 with margins chosen so that the text area (180 × 252 mm) also fits a US Letter
// sheet printed at actual size: the same file prints on both.

// PDFMaxFiles is how many entries of a logical task's file list the PDF prints: a drive of a
// million files would make a PDF of tens of thousands of pages; the complete list is in
// Files.csv, Report.json and Report.html.
const PDFMaxFiles = 5000

const (
	pdfMarginX   = 15.0
	pdfMarginTop = 15.0
	pdfMarginBot = 30.0
	pdfWidth     = 210.0 - 2*pdfMarginX
	pdfLine      = 4.6
)

// WritePDF writes the report as a PDF document.
func WritePDF(w io.Writer, r *Report) error {
	p := &pdfDoc{f: fpdf.New("P", "mm", "A4", "")}
	p.tr = p.f.UnicodeTranslatorFromDescriptor("") // cp1252, the core fonts' encoding
	f := p.f
	f.SetMargins(pdfMarginX, pdfMarginTop, pdfMarginX)
	f.SetAutoPageBreak(true, pdfMarginBot)
	f.SetTitle(p.text(r.Title+" - "+r.Source.Model+" "+r.Source.Serial), false)
	f.SetAuthor(p.text(r.Appliance.Software+" on "+r.Appliance.ID), false)
	f.SetCreator(p.text(r.Appliance.Software), false)
	f.SetCreationDate(r.Generated.UTC())
	f.SetModificationDate(r.Generated.UTC())
	f.AliasNbPages("{nb}")
	f.SetFooterFunc(func() {
		f.SetY(-pdfMarginBot + 8)
		f.SetFont("Helvetica", "", 7.5)
		f.SetTextColor(90, 90, 90)
		f.CellFormat(pdfWidth*0.7, 4, p.text(r.Title+" - "+r.Source.Model+" "+r.Source.Serial), "", 0, "L", false, 0, "")
		f.CellFormat(pdfWidth*0.3, 4, fmt.Sprintf("page %d of {nb}", f.PageNo()), "", 1, "R", false, 0, "")
		f.SetFont("Helvetica", "", 6.5)
		f.CellFormat(pdfWidth, 3.5, p.text("task "+r.Task.Key), "", 0, "L", false, 0, "")
		f.SetTextColor(0, 0, 0)
	})
	f.AddPage()
	p.header(r)
	p.sections(r)
	if err := f.Error(); err != nil {
		return fmt.Errorf("draw Report.pdf: %w", err)
	}
	if err := f.Output(w); err != nil {
		return fmt.Errorf("write Report.pdf: %w", err)
	}
	return nil
}

type pdfDoc struct {
	f  *fpdf.Fpdf
	tr func(string) string
}

// asciiFor are the characters outside Latin-1 the report uses, in ASCII.
var asciiFor = map[rune]string{'–': "-", '—': "-", '≥': ">=", '≤': "<=", '→': "->", '…': "...", '‘': "'", '’': "'", '“': `"`, '”': `"`}

// latin maps s into Latin-1 runes, which the core fonts' metrics cover.
func latin(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case r < 256:
			b.WriteRune(r)
		case asciiFor[r] != "":
			b.WriteString(asciiFor[r])
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// text is s in the core fonts' encoding.
func (p *pdfDoc) text(s string) string { return p.tr(latin(s)) }

// lines splits s (in the current font) into lines of width w.
func (p *pdfDoc) lines(s string, w float64) []string {
	s = latin(s)
	var out []string
	for _, para := range strings.Split(s, "\n") {
		ls := p.f.SplitText(para, w)
		if len(ls) == 0 {
			ls = []string{""}
		}
		out = append(out, ls...)
	}
	return out
}

func (p *pdfDoc) room(h float64) {
	_, ph := p.f.GetPageSize()
	if p.f.GetY()+h > ph-pdfMarginBot {
		p.f.AddPage()
	}
}

func (p *pdfDoc) header(r *Report) {
	f := p.f
	f.SetFont("Helvetica", "B", 17)
	f.CellFormat(pdfWidth, 9, p.text(r.Title), "", 1, "L", false, 0, "")
	f.SetFont("Helvetica", "", 9)
	f.MultiCell(pdfWidth, 4.4, p.text(fmt.Sprintf("%s - serial %s - task %s\nAppliance %s - %s - generated %s - times in %s with UTC beside",
		r.Source.Model, r.Source.Serial, r.Task.Key, r.Appliance.ID, r.Appliance.Software, When(r.Generated), r.TimeZone)), "", "L", false)
}

// keep starts a new page unless a section of about rows single-line table rows fits on this
// one: a short section is never split over two pages (a long one starts where it is).
func (p *pdfDoc) keep(rows int) {
	if h := 16 + float64(rows)*5.6; h < 297-pdfMarginTop-pdfMarginBot {
		p.room(h)
	}
}

func (p *pdfDoc) heading(s string) {
	p.room(20)
	f := p.f
	f.Ln(3)
	f.SetFont("Helvetica", "B", 12.5)
	f.CellFormat(pdfWidth, 7, p.text(s), "B", 1, "L", false, 0, "")
	f.Ln(1.5)
}

func (p *pdfDoc) sub(s string) {
	p.room(14)
	p.f.Ln(1.5)
	p.f.SetFont("Helvetica", "B", 10)
	p.f.CellFormat(pdfWidth, 5.5, p.text(s), "", 1, "L", false, 0, "")
}

func (p *pdfDoc) para(s string, style string) {
	p.f.SetFont("Helvetica", style, 9)
	for _, l := range p.lines(s, pdfWidth) {
		p.room(pdfLine)
		p.f.CellFormat(pdfWidth, pdfLine, p.tr(l), "", 1, "L", false, 0, "")
	}
}

// pdfCell is one table cell: its text, and whether it is set in Courier (hashes) or marked bad.
type pdfCell struct {
	Text string
	Mono bool
	Bad  bool
}

// table draws rows with wrapped cells; the header row repeats on each new page.
func (p *pdfDoc) table(head []string, widths []float64, rows [][]pdfCell) {
	f := p.f
	var headCells []pdfCell
	var drawRow func(cells []pdfCell, header bool)
	drawRow = func(cells []pdfCell, header bool) {
		var cellLines [][]string
		n := 1
		for i, c := range cells {
			switch {
			case header:
				f.SetFont("Helvetica", "B", 8.5)
			case c.Mono:
				f.SetFont("Courier", "", 7.5)
			default:
				f.SetFont("Helvetica", "", 8.5)
			}
			ls := p.lines(c.Text, widths[i])
			cellLines = append(cellLines, ls)
			n = max(n, len(ls))
		}
		h := float64(n)*4 + 1.6
		if _, ph := f.GetPageSize(); f.GetY()+h > ph-pdfMarginBot {
			f.AddPage()
			if !header && headCells != nil {
				drawRow(headCells, true) // the head again above the rows continued here
			}
		}
		x, y := f.GetX(), f.GetY()
		for i, c := range cells {
			if header {
				f.SetFillColor(232, 232, 232)
				f.Rect(x, y, widths[i], h, "FD")
				f.SetFont("Helvetica", "B", 8.5)
			} else {
				f.Rect(x, y, widths[i], h, "D")
				if c.Mono {
					f.SetFont("Courier", "", 7.5)
				} else {
					f.SetFont("Helvetica", "", 8.5)
				}
			}
			if c.Bad {
				f.SetTextColor(170, 0, 0)
			}
			for j, l := range cellLines[i] {
				f.SetXY(x, y+0.8+float64(j)*4)
				f.CellFormat(widths[i], 4, p.tr(l), "", 0, "L", false, 0, "")
			}
			f.SetTextColor(0, 0, 0)
			x += widths[i]
		}
		f.SetXY(pdfMarginX, y+h)
	}
	f.SetDrawColor(150, 150, 150)
	f.SetLineWidth(0.2)
	if head != nil {
		for _, h := range head {
			headCells = append(headCells, pdfCell{Text: h})
		}
		p.room(12)
		drawRow(headCells, true)
	}
	for _, r := range rows {
		drawRow(r, false)
	}
	f.Ln(2)
}

// kv draws label/value rows.
func (p *pdfDoc) kv(rows [][2]string) {
	var cells [][]pdfCell
	for _, r := range rows {
		cells = append(cells, []pdfCell{{Text: r[0]}, {Text: r[1]}})
	}
	p.table(nil, []float64{55, pdfWidth - 55}, cells)
}

func (p *pdfDoc) mono(lines []string) {
	p.f.SetFont("Courier", "", 7)
	for _, l := range lines {
		for _, w := range p.lines(l, pdfWidth) {
			p.room(3.4)
			p.f.CellFormat(pdfWidth, 3.4, p.tr(w), "", 1, "L", false, 0, "")
		}
	}
}

// sections writes the report's sections in order, each as the HTML report has them.
func (p *pdfDoc) sections(r *Report) {
	p.caseSection(r.Case, r.Task.Owner)
	p.sourceSection(r.Source)
	if a := r.Acquisition; a != nil {
		p.acquisitionSection(a, r.Appliance)
	}
	p.resultSection(r.Result, r.Kind)
	if h := r.Hashes; h != nil {
		p.hashesSection(h)
	}
	if len(r.ImageFiles) > 0 {
		p.imageFilesSection(r.ImageFiles)
	}
	if d := r.Diagnose; d != nil {
		p.f.AddPage()
		p.diagnose(d)
	}
	if l := r.Logical; l != nil {
		p.f.AddPage()
		p.logical(l)
	}
	if r.LegacyHTML != "" {
		p.heading("Findings")
		p.para("This task was recorded before reports were typed: its findings are in Report.html.", "")
	}

	p.f.AddPage()
	p.heading("Audit trail")
	if len(r.Audit) == 0 {
		p.para("No audited actions.", "")
	} else {
		p.mono(r.Audit)
	}
	p.heading("Log")
	p.mono(r.Log)
}

func (p *pdfDoc) caseSection(c Case, owner string) {
	p.keep(8)
	p.heading("Case")
	if c == (Case{}) {
		p.para("No case was recorded for this task.", "")
	}
	rows := [][2]string{{"Case number", c.Number}, {"Evidence number", c.Evidence}, {"Examiner", c.Examiner},
		{"Description", c.Description}, {"Notes", c.Notes}, {"Organisation", c.Organisation}, {"Location", c.Location}}
	if owner != "" {
		rows = append(rows, [2]string{"Started by", owner})
	}
	if c != (Case{}) {
		p.kv(rows)
	}
}

func (p *pdfDoc) sourceSection(s Source) {
	p.keep(12)
	p.heading("Source drive")
	sector := "not recorded"
	if s.SectorSize > 0 {
		sector = fmt.Sprintf("%d bytes (logical)", s.SectorSize)
	}
	rows := [][2]string{{"Port", s.Port}, {"Bus", s.Bus}, {"Model", s.Model}, {"Serial number", s.Serial}, {"Firmware", s.Firmware},
		{"Size", Bytes(s.Size)}, {"Sector size", sector}, {"Host Protected Area (HPA)", s.HPA},
		{"Device Configuration Overlay (DCO)", s.DCO}, {"Write block", s.WriteBlock}}
	if m := s.SMART; m != nil {
		rows = append(rows, [2]string{"SMART (diagnose " + When(m.At) + ")", smartLine(m) + "\n" + m.Task})
	}
	p.kv(rows)
}

func (p *pdfDoc) acquisitionSection(a *Acquisition, app Appliance) {
	p.keep(len(a.Settings) + 10)
	p.heading("Acquisition")
	p.para(a.Summary, "B")
	var rows [][2]string
	for _, st := range a.Settings {
		rows = append(rows, [2]string{st.Name, st.Value})
	}
	rows = append(rows, [2]string{"Image", a.Target}, [2]string{"Started", When(a.Started)})
	if !a.VerifyStarted.IsZero() {
		rows = append(rows, [2]string{"Verification started", When(a.VerifyStarted)})
	}
	d := Duration(a.Seconds)
	if a.ImagingSeconds != a.Seconds {
		d += " (reading the source: " + Duration(a.ImagingSeconds) + ")"
	}
	if a.PausedSeconds > 0 {
		d += "; paused " + Duration(a.PausedSeconds) + ", not counted"
	}
	rows = append(rows, [2]string{"Ended", When(a.Ended)}, [2]string{"Duration", d}, [2]string{"Average speed", Speed(a.BytesPerSecond)},
		[2]string{"Appliance", app.ID}, [2]string{"Software", app.Software})
	p.kv(rows)
}

func (p *pdfDoc) resultSection(res Result, kind string) {
	p.keep(8)
	p.heading("Result")
	rows := [][2]string{{"State", res.State}, {"Message", res.Message}}
	if res.Details != "" {
		rows = append(rows, [2]string{"Details", res.Details})
	}
	if res.Incomplete != "" {
		rows = append(rows, [2]string{"Image", res.Incomplete})
	}
	rows = append(rows, [2]string{"Bytes processed", Bytes(res.BytesDone) + " of " + Bytes(res.BytesTotal)})
	if kind != KindLogical {
		rows = append(rows, [2]string{"Retries", fmt.Sprintf("each failing sector read %d more time(s) before it was given up", res.Retries)})
	}
	un := "none"
	if res.UnreadableSectors > 0 {
		un = fmt.Sprintf("%s sectors in %d range(s), zero-filled", group(res.UnreadableSectors), len(res.Unreadable))
	}
	rec := "none needed"
	if len(res.Recovery) > 0 {
		rec = fmt.Sprintf("%d step(s), listed below", len(res.Recovery))
	}
	rows = append(rows, [2]string{"Unreadable sectors", un}, [2]string{"Freezing-drive recovery", rec})
	p.kv(rows)
	if len(res.Unreadable) > 0 {
		p.sub("Unreadable sector ranges")
		var cells [][]pdfCell
		for _, u := range res.Unreadable {
			cells = append(cells, []pdfCell{{Text: fmt.Sprint(u.First), Bad: true}, {Text: fmt.Sprint(u.Count), Bad: true}, {Text: group(u.Bytes), Bad: true}})
		}
		p.table([]string{"First LBA", "Count", "Bytes"}, []float64{60, 60, 60}, cells)
	}
	if len(res.Recovery) > 0 {
		p.sub("Freezing-drive recovery")
		p.mono(res.Recovery)
	}
}

func (p *pdfDoc) hashesSection(h *Hashes) {
	p.keep(len(h.Rows) + 5)
	p.heading("Hashes")
	p.para(h.Covers, "")
	p.f.Ln(1)
	var cells [][]pdfCell
	for _, row := range h.Rows {
		cells = append(cells, []pdfCell{{Text: row.Algorithm}, {Text: row.Acquisition, Mono: true}, {Text: row.Verification, Mono: true},
			{Text: row.Verdict, Bad: row.Verdict != Match}})
	}
	p.table([]string{"Algorithm", "Acquisition hash", "Verification hash", "Result"}, []float64{20, 69, 69, 22}, cells)
	if h.Verdict == Match {
		p.f.SetTextColor(0, 100, 0)
	} else {
		p.f.SetTextColor(170, 0, 0)
	}
	p.para(h.Verdict+": "+h.Verification, "B")
	p.f.SetTextColor(0, 0, 0)
}

func (p *pdfDoc) imageFilesSection(files []ImageFile) {
	p.heading("Image files")
	var cells [][]pdfCell
	for _, fl := range files {
		var hs []string
		algs := make([]string, 0, len(fl.Hashes))
		for a := range fl.Hashes {
			algs = append(algs, a)
		}
		sortAlgorithms(algs)
		for _, a := range algs {
			hs = append(hs, a+" "+fl.Hashes[a])
		}
		cells = append(cells, []pdfCell{{Text: fl.Name}, {Text: Bytes(fl.Size)}, {Text: strings.Join(hs, "\n"), Mono: true}})
	}
	p.table([]string{"File", "Size", "Own hashes"}, []float64{55, 45, 80}, cells)
}

func smartLine(m *SMARTSummary) string {
	if !m.Supported {
		return "not offered by this drive or bus"
	}
	v := "FAILED"
	if m.Passed {
		v = "PASSED"
	}
	return fmt.Sprintf("overall %s; %d °C; %d power-on hours; %d reallocated, %d pending sectors", v, m.TemperatureC, m.PowerOnHours, m.Reallocated, m.PendingSectors)
}

func (p *pdfDoc) diagnose(d *Diagnose) {
	p.heading("SMART")
	h := d.SMART
	if !h.Supported {
		msg := "Not offered by this drive or bus."
		if h.Error != "" {
			msg = "Not offered by this drive or bus: " + h.Error
		}
		p.para(msg, "")
	} else {
		v := "FAILED"
		if h.Passed {
			v = "PASSED"
		}
		p.kv([][2]string{{"Overall health", v}, {"Temperature", fmt.Sprintf("%d °C", h.TemperatureC)}, {"Power-on hours", fmt.Sprint(h.PowerOnHours)},
			{"Reallocated sectors", fmt.Sprint(h.Reallocated)}, {"Pending sectors", fmt.Sprint(h.PendingSectors)}})
		if len(h.Attributes) > 0 {
			var cells [][]pdfCell
			for _, a := range h.Attributes {
				typ := "old age"
				if a.PreFail {
					typ = "pre-fail"
				}
				bad := a.Verdict != AttrOK
				cells = append(cells, []pdfCell{{Text: fmt.Sprint(a.ID)}, {Text: a.Name}, {Text: typ}, {Text: fmt.Sprint(a.Value)}, {Text: fmt.Sprint(a.Worst)},
					{Text: fmt.Sprint(a.Threshold)}, {Text: a.Raw}, {Text: a.Verdict, Bad: bad}})
			}
			p.table([]string{"ID", "Attribute", "Type", "Value", "Worst", "Thresh.", "Raw", "Verdict"}, []float64{10, 50, 18, 14, 14, 16, 24, 34}, cells)
		}
		if len(h.Other) > 0 {
			var rows [][2]string
			for _, o := range h.Other {
				rows = append(rows, [2]string{o.Name, o.Value})
			}
			p.kv(rows)
		}
	}
	p.heading("Surface read test")
	s := d.Surface
	un := "none"
	if s.UnreadableSectors > 0 {
		un = group(s.UnreadableSectors)
	}
	p.kv([][2]string{{"Bytes read", Bytes(s.Bytes)}, {"Time", Duration(s.Seconds)}, {"Average speed", fmt.Sprintf("%.1f MB/s", s.MBps)},
		{"Slowest block read (blocks of " + binary(int64(s.BlockSize)) + ")", fmt.Sprintf("%.1f ms", s.SlowestMs)}, {"Unreadable sectors", un}})
	if len(s.Histogram) > 0 {
		var head []string
		var row []pdfCell
		w := pdfWidth / float64(len(s.Histogram))
		var widths []float64
		for _, b := range s.Histogram {
			head = append(head, "reads "+b.Label)
			row = append(row, pdfCell{Text: fmt.Sprint(b.Reads)})
			widths = append(widths, w)
		}
		p.table(head, widths, [][]pdfCell{row})
	}
	if len(s.Unreadable) > 0 {
		var cells [][]pdfCell
		for _, u := range s.Unreadable {
			cells = append(cells, []pdfCell{{Text: fmt.Sprint(u.First), Bad: true}, {Text: fmt.Sprint(u.Count), Bad: true}, {Text: group(u.Bytes), Bad: true}})
		}
		p.table([]string{"First LBA", "Count", "Bytes"}, []float64{60, 60, 60}, cells)
	}
	p.surfaceMap(s)
}

// surfaceMap draws the same grid as the HTML's picture.
func (p *pdfDoc) surfaceMap(s Surface) {
	if len(s.Map) == 0 {
		return
	}
	f := p.f
	const left = 24.0
	cw := (pdfWidth - left) / MapColumns
	ch := cw * 0.75
	rows := (len(s.Map) + MapColumns - 1) / MapColumns
	p.sub("Surface map")
	p.room(float64(rows)*ch + 16)
	x0, y0 := pdfMarginX+left, f.GetY()
	f.SetFont("Helvetica", "", 6.5)
	f.SetDrawColor(255, 255, 255)
	for i, g := range s.Map {
		r, c := i/MapColumns, i%MapColumns
		x, y := x0+float64(c)*cw, y0+float64(r)*ch
		if c == 0 {
			f.SetXY(pdfMarginX, y)
			f.CellFormat(left-1, ch, p.text(decimalShort(g.Offset)), "", 0, "R", false, 0, "")
		}
		col := regionColour(g)
		f.SetFillColor(col[0], col[1], col[2])
		f.Rect(x, y, cw, ch, "FD")
		if g.Unreadable > 0 {
			f.SetDrawColor(230, 0, 0)
			f.Line(x+0.8, y+0.8, x+cw-0.8, y+ch-0.8)
			f.Line(x+cw-0.8, y+0.8, x+0.8, y+ch-0.8)
			f.SetDrawColor(255, 255, 255)
		}
	}
	y := y0 + float64(rows)*ch + 3
	x := x0
	legend := func(col [3]int, label string) {
		f.SetFillColor(col[0], col[1], col[2])
		f.Rect(x, y, 4, 3, "F")
		f.SetXY(x+4.5, y-0.5)
		t := p.text(label)
		w := f.GetStringWidth(t) + 2
		f.CellFormat(w, 4, t, "", 0, "L", false, 0, "")
		x += 4.5 + w + 2
	}
	for _, c := range mapClasses {
		legend([3]int{c.R, c.G, c.B}, c.Label)
	}
	legend(unreadableColour, "unreadable")
	f.SetDrawColor(150, 150, 150)
	f.SetXY(x0, y+5)
	f.CellFormat(pdfWidth-left, 4, p.text(fmt.Sprintf("%d regions of %s each, coloured by mean read time per %s block", len(s.Map), binary(s.Map[0].Bytes), binary(int64(max(s.BlockSize, 1))))), "", 1, "L", false, 0, "")
	f.SetX(pdfMarginX)
}

func (p *pdfDoc) logical(l *Logical) {
	p.heading("Volumes")
	if len(l.Volumes) == 0 {
		p.para("No partition table or file system found.", "")
	} else {
		var cells [][]pdfCell
		for _, v := range l.Volumes {
			cells = append(cells, []pdfCell{{Text: v.Name}, {Text: strings.TrimSpace(v.Scheme + " " + v.PartType)}, {Text: strings.TrimSpace(v.FS + " " + v.Label)},
				{Text: group(v.Size)}, {Text: fmt.Sprint(v.Files)}, {Text: fmt.Sprint(v.Folders)}, {Text: group(v.Bytes)},
				{Text: fmt.Sprint(v.Deleted)}, {Text: fmt.Sprint(v.Errors), Bad: v.Errors > 0}, {Text: v.State}})
		}
		p.table([]string{"Folder", "Table / type", "File system", "Size", "Files", "Folders", "Bytes", "Deleted", "Errors", "Result"},
			[]float64{20, 20, 20, 22, 12, 13, 22, 13, 12, 26}, cells)
	}
	p.sub("Errors")
	if len(l.Problems) == 0 {
		p.para("None.", "")
	} else {
		p.mono(l.Problems)
	}
	p.heading(fmt.Sprintf("Files (%d)", len(l.Files)))
	list := l.Files
	if len(list) > PDFMaxFiles {
		list = list[:PDFMaxFiles]
		p.para(fmt.Sprintf("The first %d entries with their hashes; the complete list of %d is in Files.csv, Report.json and Report.html.", PDFMaxFiles, len(l.Files)), "B")
	} else {
		p.para("Every entry with its hashes; the same list is in Files.csv and Report.json.", "")
	}
	var cells [][]pdfCell
	for _, fl := range list {
		name, size := fl.Path, fmt.Sprint(fl.Size)
		if fl.Dir {
			name, size = name+"/", ""
		}
		if fl.Deleted {
			name += " (deleted)"
		}
		mod := ""
		if !fl.Modified.IsZero() {
			mod = fl.Modified.UTC().Format(time.DateTime)
		}
		h := fl.MD5
		if fl.SHA1 != "" {
			h = strings.TrimSpace(h + "\n" + fl.SHA1)
		}
		if fl.Err != "" {
			h = strings.TrimSpace(h + "\n" + fl.Err)
		}
		cells = append(cells, []pdfCell{{Text: name, Bad: fl.Err != ""}, {Text: size}, {Text: mod}, {Text: h, Mono: true}})
	}
	p.table([]string{"Path", "Size", "Modified (UTC)", "MD5 / SHA1"}, []float64{62, 20, 30, 68}, cells)
}
