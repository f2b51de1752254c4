package report

import (
	"fmt"
	"html"
	"strings"
)

// MapColumns is the width of the surface map's grid, in regions.
const MapColumns = 32

// mapClass is one colour of the surface map: regions whose mean block read time is below
// UpToMs (the diagnose's latency classes).
type mapClass struct {
	UpToMs  float64
	Label   string
	R, G, B int
}

var mapClasses = []mapClass{
	{5, "< 5 ms", 0x2e, 0x9e, 0x44},
	{20, "< 20 ms", 0x9c, 0xd3, 0x4c},
	{50, "< 50 ms", 0xf2, 0xd0, 0x24},
	{150, "< 150 ms", 0xf0, 0x8c, 0x1e},
	{500, "< 500 ms", 0xd9, 0x48, 0x1c},
	{0, "≥ 500 ms", 0x8a, 0x10, 0x10},
}

// unreadableColour marks regions with unreadable sectors; unreadColour regions not read.
var (
	unreadableColour = [3]int{0, 0, 0}
	notReadColour    = [3]int{0xdd, 0xdd, 0xdd}
)

// regionColour is the colour of a region on the map.
func regionColour(g Region) [3]int {
	switch {
	case g.Unreadable > 0:
		return unreadableColour
	case g.MeanMs == 0 && g.MaxMs == 0:
		return notReadColour
	}
	for _, c := range mapClasses[:len(mapClasses)-1] {
		if g.MeanMs < c.UpToMs {
			return [3]int{c.R, c.G, c.B}
		}
	}
	c := mapClasses[len(mapClasses)-1]
	return [3]int{c.R, c.G, c.B}
}

// surfaceSVG draws the surface map: one cell per region, LBA order left to right and top to
// bottom, coloured by mean read time, black where sectors stayed unreadable. Every value in it
// is a number or an escaped label.
func surfaceSVG(s Surface) string {
	if len(s.Map) == 0 {
		return "<p>No surface map (the scan read nothing).</p>"
	}
	const cw, ch, left, top = 18, 14, 78, 4
	rows := (len(s.Map) + MapColumns - 1) / MapColumns
	w, h := left+MapColumns*cw+2, top+rows*ch+46
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="surface map" font-family="sans-serif" font-size="10">`, w, h, w, h)
	for i, g := range s.Map {
		r, c := i/MapColumns, i%MapColumns
		if c == 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-4, top+r*ch+ch-3, html.EscapeString(decimalShort(g.Offset)))
		}
		col := regionColour(g)
		title := fmt.Sprintf("bytes %d–%d: mean %.1f ms, max %.1f ms", g.Offset, g.Offset+g.Bytes, g.MeanMs, g.MaxMs)
		if g.Unreadable > 0 {
			title += fmt.Sprintf(", %d unreadable sectors", g.Unreadable)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="rgb(%d,%d,%d)" stroke="#fff" stroke-width="1"><title>%s</title></rect>`,
			left+c*cw, top+r*ch, cw, ch, col[0], col[1], col[2], html.EscapeString(title))
		if g.Unreadable > 0 {
			fmt.Fprintf(&b, `<path d="M%d %dl%d %dM%d %dl%d %d" stroke="#e00" stroke-width="2"/>`,
				left+c*cw+3, top+r*ch+3, cw-6, ch-6, left+c*cw+cw-3, top+r*ch+3, -(cw - 6), ch-6)
		}
	}
	y := top + rows*ch + 14
	x := left
	legend := func(col [3]int, label string) {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="10" fill="rgb(%d,%d,%d)"/><text x="%d" y="%d">%s</text>`, x, y-9, col[0], col[1], col[2], x+15, y, html.EscapeString(label))
		x += 15 + 7*len([]rune(label)) + 10
	}
	for _, c := range mapClasses {
		legend([3]int{c.R, c.G, c.B}, c.Label)
	}
	legend(unreadableColour, "unreadable")
	region := s.Map[0].Bytes
	fmt.Fprintf(&b, `<text x="%d" y="%d">%d regions of %s each, mean read time per %s block; row labels are byte offsets</text>`,
		left, y+18, len(s.Map), html.EscapeString(binary(region)), html.EscapeString(binary(int64(max(s.BlockSize, 1)))))
	b.WriteString(`</svg>`)
	return b.String()
}

// decimalShort is an offset for an axis label.
func decimalShort(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	return decimal(n)
}
