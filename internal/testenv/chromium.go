package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium starts Debian's chromium headless (as root: no sandbox) for a test, with a window of
// w × h, and returns its chromedp context; it is closed when the test ends, or after timeout.
func Chromium(t testing.TB, w, h int, timeout time.Duration) context.Context {
	t.Helper()
	exe := Tool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}
