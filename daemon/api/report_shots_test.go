package api

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/internal/testenv"
)

// TestReportScreenshots renders an E01 imaging report and a diagnose report in Chromium and
// saves PNGs of them for the README: docs/report-e01.png (the first screen) and
// docs/report-diagnose.png (the whole page). It runs only when EVIDENCED_REPORT_SHOTS names the
// folder to write them to (`EVIDENCED_REPORT_SHOTS=$PWD/docs go test -run TestReportScreenshots
// ./daemon/api`).
func TestReportScreenshots(t *testing.T) {
	out := os.Getenv("EVIDENCED_REPORT_SHOTS")
	if out == "" {
		t.Skip("EVIDENCED_REPORT_SHOTS is not set")
	}
	// A bigger, slower drive with unreadable sectors in a few places, so that the surface map
	// shows read times and bad regions.
	bad := []int64{20000, 20001, 20002, 90000, 150000, 150001, 230000}
	e := reportEnv(t, board.PortDesc{Name: "SATA6", Mode: "source", Drive: &board.DriveDesc{Path: randomDisk(t, t.TempDir(), "big.img", 128<<20),
		Model: "WDC WD5000LPVX-22V0TT0", Serial: "WD-WXB1A8773721", Firmware: "01.01A01", BadSectors: bad, ReadMBps: 180}})
	e.json("/api/source-drives")
	e.json("/api/create-case?source=SATA1&caseId=2026-0147&evidenceId=EV-03&caseOrganization=Metro+Police+Digital+Forensics+Unit&caseLocation=Lab+2%2C+bench+4&caseDescription=Laptop+seized+at+12+Elm+Street")
	diag := e.mustStart("/api/diagnose?source=SATA6&reportFolder=" + url.QueryEscape(e.targets+"/diag"))
	e.wait(diag)
	key := e.mustStart("/api/start-image?source=SATA1&targetType=e01&e01Segment=2&e01Inv=Ann+Example&e01Notes=Evidence+bag+A-1234&targetFolder=" + url.QueryEscape(e.targets+"/e01"))
	e.wait(key)

	ctx := testenv.Chromium(t, 1000, 1300, 60*time.Second)
	shoot := func(html, png string, full bool) {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1000, 1300), chromedp.Navigate("file://"+html)); err != nil {
			t.Fatalf("open %s: %v", html, err)
		}
		act := chromedp.CaptureScreenshot()
		if full {
			act = chromedp.FullScreenshot(100) // quality 100: PNG
		}
		buf, err := chromedp.Run(ctx, act)
		if err != nil {
			t.Fatalf("screenshot of %s: %v", html, err)
		}
		if err := os.WriteFile(filepath.Join(out, png), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", png, len(buf))
	}
	if keep := os.Getenv("EVIDENCED_REPORT_KEEP"); keep != "" { // the whole report folders, to look at the PDFs
		if out, err := exec.Command("cp", "-r", e.targets, keep).CombinedOutput(); err != nil {
			t.Fatalf("keep: %v %s", err, out)
		}
	}
	shoot(filepath.Join(e.targets, "e01", "SanDisk SDSSDA120G171108456213_0_E01_report", "Report.html"), "report-e01.png", false)
	shoot(filepath.Join(e.targets, "diag", "WDC WD5000LPVX-22V0TT0WD-WXB1A8773721_diagnose_0", "Report.html"), "report-diagnose.png", true)
}
