package api

import (
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/hal"
)

// /api/sim/plug connects only files under the sim roots (here the system's temporary folder, where
// the tests' drives live), after resolving symlinks; system files are 400 and nothing is plugged.
func TestSimPlugOnlyUnderRoots(t *testing.T) {
	e := newEnv(t)
	root := filepath.Dir(e.disks["SATA1"])
	link := filepath.Join(root, "passwd-link")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		t.Fatal(err)
	}
	plug := func(path string) (int, string) {
		return e.get("/api/sim/plug?port=SATA2&model=M&serial=S&path=" + url.QueryEscape(path))
	}
	for _, p := range []string{"/etc/shadow", "/etc/passwd", "/proc/self/mem", "/dev/zero", link, root + "/../../../etc/passwd"} {
		if code, body := plug(p); code != 400 || !strings.Contains(body, "sim root") {
			t.Errorf("plug %s: %d %s, want 400 naming the sim roots", p, code, body)
		}
	}
	// 200 also proves no refused plug left a drive on SATA2 (a second plug is refused).
	if code, body := plug(e.disks["SATA3"]); code != 200 {
		t.Fatalf("plug of a file under the root: %d %s", code, body)
	}
	m := e.json("/api/scan-port?port=SATA2")
	for m["state"] == "identifying" {
		m = e.json("/api/scan-port?port=SATA2")
	}
	if m["model"] != "M" || m["serial"] != "S" {
		t.Fatalf("plugged drive not identified: %v", m)
	}
}

// notSim hides the sim board's hot-plug, as a real board has none.
type notSim struct{ hal.Board }

func TestSimRoutesOnlyOnSimBoard(t *testing.T) {
	e := newEnv(t)
	if code, _ := e.get("/api/sim/unplug?port=SATA1"); code != 200 {
		t.Fatalf("sim route on the sim board: %d", code)
	}
	api, err := New(notSim{}, nil, e.st, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	for _, p := range []string{"/api/sim/plug?port=SATA2&path=/etc/passwd&model=M&serial=S", "/api/sim/unplug?port=SATA1"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s on a board without hot-plug: %d, want 404", p, resp.StatusCode)
		}
	}
}
