package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/hal/board"
)

// Hot-plug reaches only files below the named roots, after symlinks are resolved, and never kernel
// or device files unless a root inside /proc, /sys or /dev was named.
func TestPlugRoots(t *testing.T) {
	img := image(t, 4096)
	root := filepath.Dir(img)
	outside := image(t, 4096)
	for _, l := range []struct{ name, to string }{{"passwd", "/etc/passwd"}, {"out", outside}, {"in", img}, {"mem", "/proc/self/mem"}} {
		if err := os.Symlink(l.to, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	newB := func(roots ...string) *Board {
		b, err := New(board.Description{Kind: "sim", ApplianceID: "EVD0001", Ports: []board.PortDesc{{Name: "SATA1"}}},
			Options{SpinUp: spin, PlugRoots: roots})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	cases := []struct {
		roots []string
		path  string
		want  string // "" = accepted
	}{
		{[]string{root}, img, ""},
		{[]string{root}, filepath.Join(root, "in"), ""},
		{[]string{root}, "/etc/shadow", "not under a sim root"},
		{[]string{root}, "/proc/self/mem", "not under a sim root"},
		{[]string{root}, filepath.Join(root, "passwd"), "not under a sim root"},
		{[]string{root}, filepath.Join(root, "out"), "not under a sim root"},
		{[]string{root}, filepath.Join(root, "mem"), "not under a sim root"},
		{[]string{root}, root + "/../" + filepath.Base(filepath.Dir(outside)) + "/disk.img", "not under a sim root"},
		{[]string{root}, root, "not under a sim root"},
		{nil, img, "no sim root"},
		{[]string{"/"}, "/proc/self/mem", "under /proc"},
		{[]string{"/"}, "/dev/null", "under /dev"},
		{[]string{"/"}, "/sys/kernel/notes", "under /sys"},
		{[]string{"/dev"}, "/dev/null", "not a regular file or block device"},
	}
	for _, c := range cases {
		b := newB(c.roots...)
		err := b.Plug("SATA1", c.path, "M", "S")
		if c.want == "" {
			if err != nil {
				t.Errorf("roots %v, plug %s: %v", c.roots, c.path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("roots %v, plug %s: %v, want %q", c.roots, c.path, err, c.want)
		}
	}
}
