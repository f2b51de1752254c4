package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/evidenced/evidenced/internal/testenv"
)

// TestHTMLPrintsOnA4AndLetter lays Report.html out in Chromium with print styles at the
// printable width of A4 and of Letter (the page less @page's 12 mm margins) and checks that no
// element reaches past it: long hashes, paths and log lines wrap instead of being cut off. Then
// it prints the report to PDF on both papers.
func TestHTMLPrintsOnA4AndLetter(t *testing.T) {
	r := full(100)
	sha512 := strings.Repeat("0123456789abcdef", 8)
	r.Hashes.Rows = append(r.Hashes.Rows, HashRow{Algorithm: "SHA512", Acquisition: sha512, Verification: sha512, Verdict: Match})
	r.ImageFiles = append(r.ImageFiles, ImageFile{Name: strings.Repeat("segment-name-", 20) + ".E01", Size: 1 << 40, Hashes: map[string]string{"SHA512": sha512}})
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "Report.html")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Chromium(t, 800, 1000, 60*time.Second)
	printMedia := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return chromedp.Void{}, err
	}
	for _, paper := range []struct {
		name     string
		widthMM  float64
		wIn, hIn float64 // paper size in inches, for the PDF
	}{{"A4", 210, 8.27, 11.69}, {"Letter", 215.9, 8.5, 11}} {
		px := int((paper.widthMM - 24) / 25.4 * 96) // CSS pixels at 96 per inch
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(px), 1000), chromedp.Navigate("file://"+file), printMedia); err != nil {
			t.Fatal(err)
		}
		right, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Math.max(document.documentElement.scrollWidth,
			...[...document.querySelectorAll('body *')].map(e => e.getBoundingClientRect().right))`))
		if err != nil {
			t.Fatal(err)
		}
		if right > float64(px)+0.5 {
			t.Errorf("%s: content reaches %.0f px of a %d px printable width", paper.name, right, px)
		}
		pdf, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
			res, err := cdp.Call(ctx, tg, page.PrintToPDF, page.PrintToPDFParams{PaperWidth: paper.wIn, PaperHeight: paper.hIn})
			return res.Data, err
		})
		if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Fatalf("%s: print to PDF: %v", paper.name, err)
		}
		t.Log(fmt.Sprintf("%s: printable width %d px, widest element %.0f px, PDF %d bytes", paper.name, px, right, len(pdf)))
	}
}
