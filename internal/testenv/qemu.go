package testenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// QEMU guest tests boot a Debian kernel (unpacked by scripts/qemu-kernel.sh into the folder
// EVIDENCED_QEMU_KERNEL names) with a test binary as /init. These helpers are shared by them:
// the host side finds the kernel and the modules and packs the initramfs; the guest side mounts
// the pseudo file systems and loads the modules (there is no modprobe in the guest).

// KernelFiles finds the kernel image and the files of the named modules with their dependencies,
// dependencies first, in an extracted Debian linux-image package on which depmod has run. Names
// the kernel has built in are skipped.
func KernelFiles(t testing.TB, kdir string, modules []string) (string, []string) {
	t.Helper()
	vm, _ := filepath.Glob(filepath.Join(kdir, "boot", "vmlinuz-*"))
	mdirs, _ := filepath.Glob(filepath.Join(kdir, "lib", "modules", "*"))
	if len(vm) != 1 || len(mdirs) != 1 {
		t.Fatalf("%s: want one boot/vmlinuz-* and one lib/modules/*", kdir)
	}
	dep, err := os.ReadFile(filepath.Join(mdirs[0], "modules.dep"))
	if err != nil {
		t.Fatalf("modules.dep (run depmod): %v", err)
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		name := strings.TrimSuffix(filepath.Base(mod), ".ko")
		byName[name] = mod
		byName[strings.ReplaceAll(name, "_", "-")] = mod
	}
	var order []string
	seen := map[string]bool{}
	var add func(mod string)
	add = func(mod string) {
		if seen[mod] {
			return
		}
		seen[mod] = true
		ds := deps[mod]
		for i := len(ds) - 1; i >= 0; i-- { // modules.dep lists the deepest last
			add(ds[i])
		}
		order = append(order, filepath.Join(mdirs[0], mod))
	}
	for _, name := range modules {
		mod, ok := byName[name]
		if !ok {
			continue // built in
		}
		add(mod)
	}
	return vm[0], order
}

// PackInitramfs writes the folder root as a newc cpio archive to out.
func PackInitramfs(t testing.TB, root, out string) {
	t.Helper()
	cpio := Tool(t, "cpio")
	pack := exec.Command("sh", "-c", "find . | "+cpio+" -o -H newc --quiet > "+out)
	pack.Dir = root
	if b, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, b)
	}
}

// GuestInit runs in the guest as /init: it mounts proc, sysfs, devtmpfs and a tmpfs on /tmp and
// loads the given module files in order.
func GuestInit(t testing.TB, modules []string) {
	t.Helper()
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil {
			t.Fatalf("mount %s: %v", m.dst, err)
		}
	}
	for _, m := range modules {
		f, err := os.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			t.Fatalf("load %s: %v", m, err)
		}
	}
}

// CopyFile copies a file for a guest's root, creating its folder.
func CopyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// GuestMain is TestMain for a package whose test binary is also a guest's /init: it runs the
// tests, then, as init (which must not exit: the kernel would panic), powers the guest off.
// GuestConfig is the start of a test that runs only as the init of a QEMU guest: elsewhere it
// skips (naming the host test that boots the guest); in the guest it reads the JSON file the host
// put into the initramfs into v.
func GuestConfig(t testing.TB, hostTest, path string, v any) {
	t.Helper()
	if os.Getenv("EVIDENCED_QEMU_GUEST") != "1" || os.Getpid() != 1 {
		t.Skipf("runs only as the init of the QEMU guest (%s)", hostTest)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func GuestMain(m *testing.M) {
	code := m.Run()
	if os.Getpid() == 1 {
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	os.Exit(code)
}
