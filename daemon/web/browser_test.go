package web_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/evidenced/evidenced/daemon/api"
	"github.com/evidenced/evidenced/daemon/auth"
	"github.com/evidenced/evidenced/daemon/tasks"
	"github.com/evidenced/evidenced/daemon/web"
	"github.com/evidenced/evidenced/hal/board"
	"github.com/evidenced/evidenced/hal/sim"
	"github.com/evidenced/evidenced/internal/testenv"
	"github.com/evidenced/evidenced/store"
)

// daemon is the appliance's daemon in the test process: simulated board, store, task manager,
// API and dashboard on one HTTP server, as daemon/main.go wires them.
type daemon struct {
	srv     *httptest.Server
	targets string
	st      *store.Store
	api     *api.Server
}

// taskForceBoard is the 18 ports of the TaskForce board, with drives on some of them.
func taskForceBoard(drives map[string]*board.DriveDesc) board.Description {
	desc := board.Description{Kind: "sim", ApplianceID: "EVD0001"}
	var names []string
	for i := 1; i <= 6; i++ {
		names = append(names, fmt.Sprintf("SATA%d", i))
	}
	for i := 1; i <= 6; i++ {
		names = append(names, fmt.Sprintf("SAS%d", i))
	}
	for i := 1; i <= 4; i++ {
		names = append(names, fmt.Sprintf("USB%d", i))
	}
	names = append(names, "IDE1", "EXT1")
	for _, n := range names {
		mode := "source"
		if strings.HasPrefix(n, "USB") {
			mode = "target"
		}
		desc.Ports = append(desc.Ports, board.PortDesc{Name: n, Mode: mode, Drive: drives[n]})
	}
	return desc
}

func startDaemon(t *testing.T, cfg api.Config) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{targets: filepath.Join(dir, "targets")}
	if err := os.MkdirAll(d.targets, 0o755); err != nil {
		t.Fatal(err)
	}
	desc := taskForceBoard(map[string]*board.DriveDesc{
		"SATA1": {Path: testenv.RandomDisk(t, dir, "sata1.img", 4<<20), Model: "SanDisk SDSSDA120G", Serial: "171108456213"},
		"SATA2": {Path: testenv.RandomDisk(t, dir, "sata2.img", 2<<20), Model: "ST500LM012 HN-M500MBB", Serial: "S2RWJ9CD415935", BadSectors: []int64{100}},
		"USB1":  {Path: testenv.RandomDisk(t, dir, "usb1.img", 1<<20), Model: "WDC WD10JMVW-11AJGS4", Serial: "WD-WXA1AA6PTY1K"},
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := sim.New(desc, sim.Options{SpinUp: 30 * time.Millisecond, Logger: log, PlugRoots: []string{os.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	d.st = st
	tm, err := tasks.New(st, b, log, tasks.Config{ApplianceID: "EVD0001", TargetRoots: []string{d.targets}, Software: "evidenced test",
		CheckpointEvery: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScanWait == 0 {
		cfg.ScanWait = time.Second
	}
	if d.api, err = api.New(b, tm, st, log, cfg); err != nil {
		t.Fatal(err)
	}
	d.srv = httptest.NewUnstartedServer(ui.Wrap(d.api.Handler()))
	d.srv.Config.RegisterOnShutdown(d.api.StopEvents)
	d.srv.Start()
	t.Cleanup(func() { d.api.StopEvents(); d.srv.Close(); tm.Close(); b.Close(); st.Close() })
	return d
}

// get calls the API directly (the independent view the UI is compared with).
func (d *daemon) get(t *testing.T, path string, q url.Values) (int, []byte) {
	t.Helper()
	return d.getAs(t, path, q, "")
}

// getAs calls the API with a session token (none when ""), as a script would.
func (d *daemon) getAs(t *testing.T, path string, q url.Values, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.srv.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// outDir is where screenshots and the page weight go: $EVIDENCED_UI_OUT, else a temporary folder.
func outDir(t *testing.T) string {
	if d := os.Getenv("EVIDENCED_UI_OUT"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browserCtx starts Debian's chromium headless (flags as the machine notes give them for root and a
// closed network), with a 1280x800 window: the appliance's touchscreen.
func browserCtx(t *testing.T) (context.Context, *jsErrors) {
	t.Helper()
	// The browser goes first at cleanup, so that the daemon's Close does not wait for its event stream.
	ctx := testenv.Chromium(t, 1280, 800, 100*time.Second)
	errs := &jsErrors{}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			errs.add(e.ExceptionDetails.Text + " " + describeException(e.ExceptionDetails))
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}
	return ctx, errs
}

func describeException(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return fmt.Sprintf("at %s:%d", d.URL, d.LineNumber)
}

// jsErrors collects uncaught exceptions of the page: any is a defect.
type jsErrors struct {
	mu   sync.Mutex
	list []string
}

func (e *jsErrors) add(s string) { e.mu.Lock(); e.list = append(e.list, s); e.mu.Unlock() }
func (e *jsErrors) check(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.list {
		t.Errorf("JavaScript exception in the dashboard: %s", s)
	}
}

// weight adds up the bytes the browser received per request (headers and bodies, compressed as sent).
type weight struct {
	mu   sync.Mutex
	urls map[network.RequestID]string
	size map[string]float64
}

func (w *weight) listen(ctx context.Context) error {
	w.urls, w.size = map[network.RequestID]string{}, map[string]float64{}
	return chromedp.Listen(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			w.urls[ev.RequestID] = ev.Request.URL
		case *network.EventLoadingFinished:
			w.size[w.urls[ev.RequestID]] += ev.EncodedDataLength
		}
	})
}

func (w *weight) report() (static, apiBytes float64, lines []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for u, n := range w.size {
		p, _ := url.Parse(u)
		if p != nil && strings.HasPrefix(p.Path, "/api/") {
			apiBytes += n
		} else {
			static += n
		}
		lines = append(lines, fmt.Sprintf("%8.0f  %s", n, u))
	}
	return static, apiBytes, lines
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func poll(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

func setValue(t *testing.T, ctx context.Context, sel, v string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(sel), v)); err != nil {
		t.Fatalf("set %s: %v", sel, err)
	}
}

// The dashboard in a real browser against the daemon on the simulated board: the board appears,
// a drive plugged through the sim API shows up without a reload, a bad target folder shows the
// API's own 400 message, an E01 started from the form runs with a moving progress bar, pauses,
// resumes and completes with the source's MD5, ewfverify accepts it, and the report downloads.
func TestDashboardInBrowser(t *testing.T) {
	ewfverify, ewfinfo := testenv.Tool(t, "ewfverify"), testenv.Tool(t, "ewfinfo")
	d := startDaemon(t, api.Config{})
	out := outDir(t)
	ctx, jsErr := browserCtx(t)

	// First load, with the bytes it takes.
	var w weight
	if err := w.listen(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(d.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "SATA1's drive on the board", `document.querySelector('.port[data-port="SATA1"] .model')?.textContent === 'SanDisk SDSSDA120G'`, 15*time.Second)
	poll(t, ctx, "the live stream", `document.querySelector('#conn').textContent === 'live'`, 10*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('.port').length`); n != 18 {
		t.Errorf("board shows %d ports, want the 18 of the description", n)
	}
	if got := eval[string](t, ctx, `document.querySelector('.port[data-port="USB1"] .mode').textContent`); got != "TARGET" {
		t.Errorf("USB1 mode shown as %q, want TARGET", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('.port[data-port="SATA1"] .size').textContent`); got != "4.2 MB" {
		t.Errorf("SATA1 size shown as %q, want 4.2 MB (4 MiB)", got)
	}
	time.Sleep(500 * time.Millisecond) // the task list and cases answer after the ports
	static, apiBytes, lines := w.report()
	weightText := fmt.Sprintf("first load of the dashboard: %.0f bytes for the page (HTML, CSS, JS), %.0f bytes of API answers, %.0f in all (plus the event stream)\n%s\n",
		static, apiBytes, static+apiBytes, strings.Join(lines, "\n"))
	t.Log(weightText)
	if err := os.WriteFile(filepath.Join(out, "page-weight.txt"), []byte(weightText), 0o644); err != nil {
		t.Fatal(err)
	}
	if static == 0 || static > 100_000 {
		t.Errorf("page weight %.0f bytes: want some, and under 100 kB", static)
	}
	screenshot(t, ctx, filepath.Join(out, "dashboard-board.png"))

	// Hot-plug through the sim API: a slow drive (4 MB/s) so that the task can be watched.
	eval[bool](t, ctx, `window.__sameDocument = true`)
	plugged := testenv.RandomDisk(t, t.TempDir(), "plugged.img", 24<<20)
	code, body := d.get(t, "/api/sim/plug", url.Values{"port": {"SATA5"}, "path": {plugged}, "model": {"Test Disk"}, "serial": {"PLUG0001"}, "readMBps": {"4"}})
	if code != 200 {
		t.Fatalf("sim plug: %d %s", code, body)
	}
	poll(t, ctx, "the plugged drive on SATA5", `document.querySelector('.port[data-port="SATA5"] .serial')?.textContent === 'S/N PLUG0001'`, 10*time.Second)
	if !eval[bool](t, ctx, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded to show the plugged drive")
	}

	// A case for the plugged drive, made in the Cases view.
	click(t, ctx, `#nav button[data-view=cases]`)
	poll(t, ctx, "the drive in the case form", `[...document.querySelectorAll('#case-drive option')].some(o => o.value === 'SATA5 Test Disk PLUG0001')`, 10*time.Second)
	setValue(t, ctx, `#case-drive`, "SATA5 Test Disk PLUG0001")
	setValue(t, ctx, `#case-form [name=caseId]`, "CASE-UI-1")
	setValue(t, ctx, `#case-form [name=caseExaminer]`, "Ann Example")
	click(t, ctx, `#case-form button[type=submit]`)
	poll(t, ctx, "the new case in the list", `document.querySelector('#cases .item[data-case="CASE-UI-1"]')?.textContent.includes('PLUG0001')`, 10*time.Second)
	if msg := eval[string](t, ctx, `document.querySelector('#case-error').textContent`); msg != "" {
		t.Fatalf("case form error: %s", msg)
	}
	// The saved case stays in the form for editing: a description added goes through edit-case.
	if title := eval[string](t, ctx, `document.querySelector('#case-title').textContent`); title != "Edit case CASE-UI-1" {
		t.Errorf("case form title after saving: %q", title)
	}
	setValue(t, ctx, `#case-form [name=caseDescription]`, "Seized laptop")
	click(t, ctx, `#case-form button[type=submit]`)
	poll(t, ctx, "the edited case", `document.querySelector('#cases .item[data-case="CASE-UI-1"]')?.textContent.includes('Seized laptop')`, 10*time.Second)
	if code, body := d.get(t, "/api/cases", nil); code != 200 || !strings.Contains(string(body), `"caseDescription":"Seized laptop"`) {
		t.Errorf("cases after the edit: %d %s", code, body)
	}
	screenshot(t, ctx, filepath.Join(out, "dashboard-cases.png"))
	click(t, ctx, `#nav button[data-view=board]`)

	// A target folder outside the target roots: the form shows the API's own 400 message.
	click(t, ctx, `.port[data-port="SATA5"]`)
	poll(t, ctx, "the start dialog", `document.querySelector('#start').open`, 5*time.Second)
	setValue(t, ctx, `#start-folder`, "/not/a/target/root")
	click(t, ctx, `#start-go`)
	poll(t, ctx, "the error message", `document.querySelector('#start-error').textContent !== ''`, 10*time.Second)
	shown := eval[string](t, ctx, `document.querySelector('#start-error').textContent`)
	code, body = d.get(t, "/api/start-image", url.Values{"source": {"SATA5 Test Disk PLUG0001"}, "targetFolder": {"/not/a/target/root"}})
	var apiErr struct{ Error string }
	if err := json.Unmarshal(body, &apiErr); err != nil || code != 400 || apiErr.Error == "" {
		t.Fatalf("API answer for a bad target folder: %d %s", code, body)
	}
	if shown != apiErr.Error {
		t.Errorf("the form shows %q, the API says %q", shown, apiErr.Error)
	}
	screenshot(t, ctx, filepath.Join(out, "dashboard-start-error.png"))

	// Start an E01 into the target root.
	setValue(t, ctx, `#start-folder`, d.targets)
	click(t, ctx, `#start-go`)
	poll(t, ctx, "the dialog to close", `!document.querySelector('#start').open`, 10*time.Second)
	card := `#active .task`
	poll(t, ctx, "the running task", `document.querySelector('`+card+`.st-in-progress')`, 10*time.Second)
	poll(t, ctx, "progress", `parseInt(document.querySelector('`+card+` .pct').textContent) >= 5`, 20*time.Second)
	p1 := eval[int](t, ctx, `parseInt(document.querySelector('`+card+` .pct').textContent)`)
	w1 := eval[string](t, ctx, `document.querySelector('`+card+` .bar > span').style.width`)
	poll(t, ctx, "the bar to move", fmt.Sprintf(`parseInt(document.querySelector('%s .pct').textContent) > %d`, card, p1), 10*time.Second)
	if w2 := eval[string](t, ctx, `document.querySelector('`+card+` .bar > span').style.width`); w2 == w1 {
		t.Errorf("progress bar width stayed %s while the percentage moved", w1)
	}
	if sp := eval[string](t, ctx, `document.querySelector('`+card+` .speed').textContent`); !strings.HasSuffix(sp, "MB/s") {
		t.Errorf("speed shown as %q", sp)
	}
	if step := eval[string](t, ctx, `document.querySelector('`+card+` .step').textContent`); step != "imaging" {
		t.Errorf("step shown as %q, want imaging", step)
	}
	poll(t, ctx, "the ETA", `/^\d+:\d\d$/.test(document.querySelector('`+card+` .eta').textContent)`, 5*time.Second)
	screenshot(t, ctx, filepath.Join(out, "dashboard-task.png"))
	key := eval[string](t, ctx, `document.querySelector('`+card+`').dataset.key`)
	if !strings.HasPrefix(key, "image_0_Test%20Disk_PLUG0001_EVD0001_") {
		t.Errorf("task key %q", key)
	}
	if busy := eval[string](t, ctx, `document.querySelector('.port[data-port="SATA5"] .pstate').textContent`); busy != "busy" {
		t.Errorf("SATA5 shows %q while it images", busy)
	}

	// Pause and resume from the card; the API agrees with what the card shows.
	click(t, ctx, card+` button[data-act=pause]`)
	poll(t, ctx, "the paused state", `document.querySelector('`+card+`.st-paused')`, 15*time.Second)
	if st := checkTask(t, d, key)["state"]; st != "paused" {
		t.Errorf("after Pause the API says %v", st)
	}
	click(t, ctx, card+` button[data-act=resume]`)
	poll(t, ctx, "the task to run again", `document.querySelector('`+card+`.st-in-progress')`, 15*time.Second)

	// Completion: the task leaves the active list; the Tasks view shows hashes and verification.
	poll(t, ctx, "completion", `!document.querySelector('#active .task')`, 60*time.Second)
	click(t, ctx, `#nav button[data-view=tasks]`)
	done := `#tasks .task.st-completed`
	poll(t, ctx, "the completed task", `document.querySelector('`+done+` .h-MD5')`, 10*time.Second)
	if pct := eval[string](t, ctx, `document.querySelector('`+done+` .pct').textContent`); pct != "100%" {
		t.Errorf("completed task shows %s", pct)
	}
	want := testenv.FileMD5(t, plugged)
	if got := eval[string](t, ctx, `document.querySelector('`+done+` .h-MD5').textContent`); got != want {
		t.Errorf("MD5 shown %s, source file's MD5 %s", got, want)
	}
	if v := eval[string](t, ctx, `document.querySelector('`+done+` .msg').textContent`); !strings.Contains(v, "verified") {
		t.Errorf("verification not shown: %q", v)
	}
	e01 := filepath.Join(d.targets, "Test DiskPLUG0001_0.E01")
	if outp, err := exec.Command(ewfverify, "-q", e01).CombinedOutput(); err != nil {
		t.Errorf("ewfverify %s: %v\n%s", e01, err, outp)
	}
	// The case made in the UI went into the image's metadata.
	if outp, err := exec.Command(ewfinfo, e01).CombinedOutput(); err != nil || !strings.Contains(string(outp), "CASE-UI-1") {
		t.Errorf("ewfinfo %s: %v: no case number CASE-UI-1 in\n%s", e01, err, outp)
	}

	// Filters: by state on the server's /api/tasks?state=.
	setValue(t, ctx, `#f-state`, "failed")
	eval[bool](t, ctx, `document.querySelector('#f-state').dispatchEvent(new Event('change')), true`)
	poll(t, ctx, "the state filter", `document.querySelector('#f-count').textContent === '0 tasks'`, 5*time.Second)
	setValue(t, ctx, `#f-state`, "completed")
	eval[bool](t, ctx, `document.querySelector('#f-state').dispatchEvent(new Event('change')), true`)
	poll(t, ctx, "the completed filter", `document.querySelector('#f-count').textContent === '1 task'`, 5*time.Second)
	screenshot(t, ctx, filepath.Join(out, "dashboard-tasks.png"))
	// And by case: the filter lists the case made above, and the task carries it.
	setValue(t, ctx, `#f-state`, "")
	setValue(t, ctx, `#f-case`, "CASE-UI-1")
	eval[bool](t, ctx, `document.querySelector('#f-case').dispatchEvent(new Event('change')), true`)
	poll(t, ctx, "the case filter", `document.querySelector('#f-count').textContent === '1 task' && document.querySelector('#tasks .task .src').textContent.includes('case CASE-UI-1')`, 5*time.Second)

	// The report link downloads the API's report zip.
	dl := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl, EventsEnabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	finished := make(chan string, 1)
	if err := chromedp.ListenBrowser(ctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCompleted {
			select {
			case finished <- e.GUID:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	click(t, ctx, done+` a.report`)
	var guid string
	select {
	case guid = <-finished:
	case <-time.After(15 * time.Second):
		t.Fatal("the report did not download")
	}
	zr, err := zip.OpenReader(filepath.Join(dl, guid))
	if err != nil {
		t.Fatalf("downloaded report: %v", err)
	}
	defer zr.Close()
	var report string
	for _, f := range zr.File {
		if filepath.Base(f.Name) == "Report.html" {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			report = string(b)
		}
	}
	if !strings.Contains(strings.ToLower(report), want) {
		t.Errorf("the downloaded report has no Report.html with the MD5 %s", want)
	}

	// A drive's identity is hostile input: markup in a model or serial shows as text, never runs.
	code, body = d.get(t, "/api/sim/plug", url.Values{"port": {"SATA6"}, "path": {plugged}, "model": {`<img src=x onerror="window.xss=1">`}, "serial": {"<b>S1"}})
	if code != 200 {
		t.Fatalf("sim plug: %d %s", code, body)
	}
	poll(t, ctx, "the hostile drive on SATA6", `document.querySelector('.port[data-port="SATA6"] .serial')?.textContent === 'S/N <b>S1'`, 10*time.Second)
	if got := eval[string](t, ctx, `document.querySelector('.port[data-port="SATA6"] .model').textContent`); got != `<img src=x onerror="window.xss=1">` {
		t.Errorf("hostile model shown as %q", got)
	}
	if eval[bool](t, ctx, `window.xss === 1 || !!document.querySelector('.port img, .port b')`) {
		t.Error("markup in a drive's identity became part of the page")
	}

	// A diagnose from the board: SATA2's unreadable sector shows on its card, as check-task counts it.
	click(t, ctx, `#nav button[data-view=board]`)
	click(t, ctx, `.port[data-port="SATA2"]`)
	click(t, ctx, `#start-kinds button[data-kind=diagnose]`)
	if eval[bool](t, ctx, `!document.querySelector('#start-folder').closest('label').hidden`) {
		t.Error("the diagnose form shows the image target folder")
	}
	click(t, ctx, `#start-go`)
	poll(t, ctx, "the dialog to close", `!document.querySelector('#start').open`, 10*time.Second)
	click(t, ctx, `#nav button[data-view=tasks]`)
	setValue(t, ctx, `#f-case`, "")
	eval[bool](t, ctx, `document.querySelector('#f-case').dispatchEvent(new Event('change')), true`)
	diag := `#tasks .task.st-completed[data-key^="diagnose_0_"]`
	poll(t, ctx, "the finished diagnose", `document.querySelector('`+diag+` a.report')`, 30*time.Second)
	dkey := eval[string](t, ctx, `document.querySelector('`+diag+`').dataset.key`)
	if n := checkTask(t, d, dkey)["unreadableSectors"]; n != float64(1) {
		t.Errorf("check-task of the diagnose: unreadableSectors %v, want 1", n)
	}
	if got := eval[string](t, ctx, `document.querySelector('`+diag+` .badn').textContent`); got != "1" {
		t.Errorf("the diagnose card shows %s bad sectors, want 1", got)
	}
	jsErr.check(t)
}

func ptr[T any](v T) *T { return &v }

func checkTask(t *testing.T, d *daemon, key string) map[string]any {
	t.Helper()
	code, body := d.get(t, "/api/check-task", url.Values{"taskKey": {key}})
	if code != 200 {
		t.Fatalf("check-task: %d %s", code, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// With user management on: the login page, the API's message for a wrong password, the board and
// its live stream once signed in (the token rides on every call and on the stream), and sign-out.
func TestDashboardLogin(t *testing.T) {
	d := startDaemon(t, api.Config{UserManagement: true})
	// An admin: the test also saves a filter preset, which only admins may.
	if _, err := auth.AddUser(d.st, "examiner", "pw-12345678", auth.Admin); err != nil {
		t.Fatal(err)
	}
	// carol is removed through the Users page.
	if _, err := auth.AddUser(d.st, "carol", "carol-pw-1234", auth.Examiner); err != nil {
		t.Fatal(err)
	}
	ctx, jsErr := browserCtx(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(d.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the login page", `!document.querySelector('#view-login').hidden && document.querySelector('#nav').hidden`, 10*time.Second)
	setValue(t, ctx, `#login-form [name=username]`, "examiner")
	setValue(t, ctx, `#login-form [name=password]`, "wrong")
	click(t, ctx, `#login-form button[type=submit]`)
	poll(t, ctx, "the login error", `document.querySelector('#login-error').textContent !== ''`, 15*time.Second)
	resp, err := http.Post(d.srv.URL+"/login", "application/json", strings.NewReader(`{"username":"examiner","password":"wrong"}`))
	if err != nil {
		t.Fatal(err)
	}
	var apiErr struct{ Error string }
	err = json.NewDecoder(resp.Body).Decode(&apiErr)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("API login with a wrong password: %d %v", resp.StatusCode, err)
	}
	if got := eval[string](t, ctx, `document.querySelector('#login-error').textContent`); got != apiErr.Error {
		t.Errorf("login page shows %q, the API says %q", got, apiErr.Error)
	}

	setValue(t, ctx, `#login-form [name=password]`, "pw-12345678")
	click(t, ctx, `#login-form button[type=submit]`)
	poll(t, ctx, "the board after sign-in", `document.querySelector('.port[data-port="SATA1"] .model')?.textContent === 'SanDisk SDSSDA120G'`, 15*time.Second)
	poll(t, ctx, "the live stream with the token", `document.querySelector('#conn').textContent === 'live'`, 10*time.Second)
	if !eval[bool](t, ctx, `!document.querySelector('#nav [data-view=users]').hidden`) {
		t.Error("the Users view is hidden with user management on")
	}
	// Presets: a bad one shows the API's message, a good one is listed and offered for logical imaging.
	click(t, ctx, `#nav button[data-view=presets]`)
	setValue(t, ctx, `#preset-form textarea`, `{"name": "docs", "colour": "blue"}`)
	click(t, ctx, `#preset-form button[type=submit]`)
	poll(t, ctx, "the preset error", `document.querySelector('#preset-error').textContent.includes('colour')`, 10*time.Second)
	setValue(t, ctx, `#preset-form textarea`, `{"name": "docs", "extensions": ["pdf", "docx"]}`)
	click(t, ctx, `#preset-form button[type=submit]`)
	poll(t, ctx, "the saved preset", `document.querySelector('#presets .item[data-name="docs"]')?.textContent.includes('docx')`, 10*time.Second)
	click(t, ctx, `#nav button[data-view=board]`)
	click(t, ctx, `.port[data-port="SATA1"]`)
	poll(t, ctx, "the preset in the logical form", `[...document.querySelectorAll('#start-presets option')].some(o => o.value === 'docs')`, 10*time.Second)
	if eval[bool](t, ctx, `!document.querySelector('#start-image-presets').closest('label').hidden`) {
		t.Error("the image form offers imaging presets though none exists")
	}
	click(t, ctx, `#start-kinds button[data-kind=logical]`)
	if !eval[bool](t, ctx, `!document.querySelector('#start-presets').closest('label').hidden`) {
		t.Error("the logical form hides its filter presets")
	}
	click(t, ctx, `#start-cancel`)

	// Users, as the admin: the header names the role; an examiner added through the form is in
	// GET /api/users; a refusal (the last admin cannot become an examiner) shows the API's text.
	if who := eval[string](t, ctx, `document.querySelector('#who').textContent`); who != "examiner · admin" {
		t.Errorf("the header shows %q, want the user and the admin role", who)
	}
	adminTok := eval[string](t, ctx, `localStorage.getItem('evidenced.token')`)
	click(t, ctx, `#nav button[data-view=users]`)
	poll(t, ctx, "the user list", `document.querySelector('#users .item[data-name="examiner"] .role')?.textContent === 'admin'`, 10*time.Second)
	setValue(t, ctx, `#user-add [name=name]`, "alice")
	setValue(t, ctx, `#user-add [name=password]`, "alice-pw-1234")
	setValue(t, ctx, `#user-add [name=role]`, "examiner")
	click(t, ctx, `#user-add button[type=submit]`)
	poll(t, ctx, "the added user", `document.querySelector('#users .item[data-name="alice"] .role')?.textContent === 'examiner'`, 10*time.Second)
	code, body := d.getAs(t, "/api/users", nil, adminTok)
	var list struct{ Users []auth.UserInfo }
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		t.Fatalf("GET /api/users: %d %s %v", code, body, err)
	}
	roles := map[string]auth.Role{}
	for _, u := range list.Users {
		roles[u.Name] = u.Role
	}
	if roles["alice"] != auth.Examiner || roles["examiner"] != auth.Admin || roles["carol"] != auth.Examiner || len(roles) != 3 {
		t.Errorf("the API lists %v after adding alice through the page", roles)
	}
	// The role select saves on change, as a person's pick does.
	eval[bool](t, ctx, `(s => { s.value = 'examiner'; s.dispatchEvent(new Event('change', {bubbles: true})); return true })(document.querySelector('#users .item[data-name="examiner"] select[data-f=role]'))`)
	poll(t, ctx, "the last-admin refusal", `document.querySelector('#users .item[data-name="examiner"] .error').textContent !== ''`, 10*time.Second)
	if got := eval[string](t, ctx, `document.querySelector('#users .item[data-name="examiner"] .error').textContent`); got != "the appliance must keep at least one admin" {
		t.Errorf("demoting the last admin shows %q, not the API's refusal", got)
	}
	// Remove: the page asks first (answered yes here); the last admin is refused, carol goes.
	eval[bool](t, ctx, `(window.confirm = () => true, true)`)
	eval[bool](t, ctx, `(document.querySelector('#users .item[data-name="examiner"] .error').textContent = '', true)`)
	click(t, ctx, `#users .item[data-name="examiner"] button[data-act=remove]`)
	poll(t, ctx, "the last-admin removal refusal", `document.querySelector('#users .item[data-name="examiner"] .error').textContent === 'the appliance must keep at least one admin'`, 10*time.Second)
	click(t, ctx, `#users .item[data-name="carol"] button[data-act=remove]`)
	poll(t, ctx, "carol gone from the list", `document.querySelector('#users .item[data-name="carol"]') === null && document.querySelector('#users .item[data-name="alice"]') !== null`, 10*time.Second)
	if _, err := d.st.User("carol"); err == nil {
		t.Error("carol is still in the store after Remove")
	}
	// Reset alice's password: she signs in below with the new one only.
	setValue(t, ctx, `#users .item[data-name="alice"] [data-f=pw]`, "alice-pw-5678")
	click(t, ctx, `#users .item[data-name="alice"] button[data-act=reset]`)
	poll(t, ctx, "the reset", `document.querySelector('#users .item[data-name="alice"] [data-f=pw]')?.value === ''`, 10*time.Second)
	if msg := eval[string](t, ctx, `document.querySelector('#users .item[data-name="alice"] .error').textContent`); msg != "" {
		t.Errorf("resetting alice's password: %s", msg)
	}

	// Sign-out ends the session on the appliance, not only in the page.
	click(t, ctx, `#logout`)
	poll(t, ctx, "the login page after sign-out", `!document.querySelector('#view-login').hidden && !localStorage.getItem('evidenced.token')`, 5*time.Second)
	// The admin's lists go with the session: the next user never sees, while their own lists load,
	// the admin's delete buttons (a test that found the examiner's presets page still showing them).
	if !eval[bool](t, ctx, `document.querySelector('#presets').children.length === 0 && document.querySelector('#users').children.length === 0`) {
		t.Error("after sign-out the page still holds the admin's preset or user list")
	}
	if code, body := d.getAs(t, "/api/whoami", nil, adminTok); code != http.StatusUnauthorized {
		t.Errorf("the signed-out admin token still works: %d %s", code, body)
	}

	// The examiner: role in the header, no user management, presets read-only, own password only.
	setValue(t, ctx, `#login-form [name=username]`, "alice")
	setValue(t, ctx, `#login-form [name=password]`, "alice-pw-1234")
	click(t, ctx, `#login-form button[type=submit]`)
	poll(t, ctx, "the old password refused after the reset", `document.querySelector('#login-error').textContent === 'wrong user name or password'`, 10*time.Second)
	setValue(t, ctx, `#login-form [name=password]`, "alice-pw-5678")
	click(t, ctx, `#login-form button[type=submit]`)
	poll(t, ctx, "the examiner's header", `document.querySelector('#who').textContent === 'alice · examiner' && !document.querySelector('#who').hidden`, 15*time.Second)
	exTok := eval[string](t, ctx, `localStorage.getItem('evidenced.token')`)
	click(t, ctx, `#nav button[data-view=presets]`)
	poll(t, ctx, "the presets as an examiner", `document.querySelector('#presets .item[data-name="docs"]') !== null`, 10*time.Second)
	for what, expr := range map[string]string{
		"the preset editor is disabled":       `document.querySelector('#preset-form textarea').disabled && document.querySelector('#preset-form button[type=submit]').disabled`,
		"no preset has a delete button":       `document.querySelector('#presets button[data-act=delete]') === null`,
		"the presets page says why":           `!document.querySelector('#view-presets .note').hidden`,
		"the user list and add form are gone": `document.querySelector('#users').hidden && document.querySelector('#user-add').hidden`,
		"the users page says why":             `!document.querySelector('#view-users .note').hidden`,
		"own password can be changed":         `!document.querySelector('#password-form').hidden`,
	} {
		if !eval[bool](t, ctx, expr) {
			t.Errorf("as an examiner: %s is false", what)
		}
	}
	if code, _ := d.getAs(t, "/api/users", nil, exTok); code != http.StatusForbidden {
		t.Errorf("the examiner's token gets %d from GET /api/users, want 403 (the page hides what the API refuses)", code)
	}
	// Her own password: the change ends her session, and she signs in with the new one.
	click(t, ctx, `#nav button[data-view=users]`)
	setValue(t, ctx, `#password-form [name=password]`, "alice-pw-9999")
	click(t, ctx, `#password-form button[type=submit]`)
	poll(t, ctx, "the login page after the password change", `!document.querySelector('#view-login').hidden && document.querySelector('#login-error').textContent.startsWith('Password changed')`, 10*time.Second)
	if code, _ := d.getAs(t, "/api/whoami", nil, exTok); code != http.StatusUnauthorized {
		t.Errorf("the examiner's token outlives her password change: %d", code)
	}
	setValue(t, ctx, `#login-form [name=password]`, "alice-pw-9999")
	click(t, ctx, `#login-form button[type=submit]`)
	poll(t, ctx, "alice signed in with her new password", `document.querySelector('#who').textContent === 'alice · examiner' && !!localStorage.getItem('evidenced.token')`, 15*time.Second)
	exTok = eval[string](t, ctx, `localStorage.getItem('evidenced.token')`)
	click(t, ctx, `#nav button[data-view=users]`)
	click(t, ctx, `#logout`)
	poll(t, ctx, "the login page after the examiner signs out", `!document.querySelector('#view-login').hidden && !localStorage.getItem('evidenced.token')`, 5*time.Second)
	if code, body := d.getAs(t, "/api/whoami", nil, exTok); code != http.StatusUnauthorized {
		t.Errorf("the signed-out examiner token still works: %d %s", code, body)
	}
	jsErr.check(t)
}
